"""/v1/documents: upload (JSON text or multipart file), list, get, delete."""

from __future__ import annotations

import json

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool  # embedding + index writes: off the event loop
from starlette.datastructures import UploadFile

from rag.api.deps import LibraryDep, ReadAuth, SettingsDep, WriteAuth
from rag.api.schemas import DocumentIn, ErrorBody, IngestResponse
from rag.errors import BadInputError, DocumentTooLargeError
from rag.loaders import merge_upload_fields
from rag.models import Document, DocumentInfo, SearchFilters

router = APIRouter(tags=["documents"])

_UPLOAD_DOC = {
    "requestBody": {
        "content": {
            "application/json": {"schema": DocumentIn.model_json_schema(ref_template="#/components/schemas/{model}")},
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary", "description": ".txt .md .html .pdf .jsonl"},
                    "metadata": {"type": "string", "description": 'JSON object, e.g. {"tickers": ["CALX"]}'},
                },
            }},
        },
        "required": True,
    }
}


@router.post("/v1/documents", response_model=IngestResponse, status_code=status.HTTP_201_CREATED,
             dependencies=[WriteAuth], openapi_extra=_UPLOAD_DOC,
             responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 413: {"model": ErrorBody}},
             summary="Add or replace a document")
async def upload(request: Request, library: LibraryDep, settings: SettingsDep) -> IngestResponse:
    """JSON (`DocumentIn`: text, or a URL the server fetches) or multipart/form-data with `file` and optional
    `metadata` JSON. A document whose id exists is replaced; an identical one is left as is. Ids use letters,
    digits and . _ : - only (a file name's other characters become -). One upload may make at most
    RAG_SERVER__MAX_INGEST_CHUNKS chunks (413)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=5)
        upload_file = form.get("file")
        if not isinstance(upload_file, UploadFile) or not upload_file.filename:
            raise BadInputError("multipart upload needs a 'file' part with a file name")
        data = await upload_file.read(settings.max_file_bytes + 1)
        if len(data) > settings.max_file_bytes:
            raise DocumentTooLargeError(f"file exceeds the limit of {settings.max_file_bytes} bytes")
        raw_meta = form.get("metadata")
        try:
            meta = json.loads(raw_meta) if isinstance(raw_meta, str) and raw_meta.strip() else {}
        except json.JSONDecodeError as exc:
            raise BadInputError(f"metadata is not valid JSON: {exc.msg}") from exc
        if not isinstance(meta, dict):
            raise BadInputError("metadata must be a JSON object")
        report = await run_in_threadpool(library.add_upload, upload_file.filename, data, meta,
                                         settings.server.max_ingest_chunks)
    elif content_type.startswith("application/json"):
        try:
            body = DocumentIn.model_validate_json(await request.body())
        except ValidationError as exc:
            first = exc.errors()[0]
            raise BadInputError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        fields = merge_upload_fields(body.model_dump(exclude={"text", "url", "metadata"}), body.metadata)
        if body.url is not None:
            report = await run_in_threadpool(library.add_url, body.url, fields, settings.server.fetch_private_urls,
                                             settings.server.max_ingest_chunks)
        else:
            doc_id = fields.pop("id", None)
            report = await run_in_threadpool(library.add_text, body.text or "", doc_id,
                                             settings.server.max_ingest_chunks, **fields)
    else:
        raise BadInputError("send application/json or multipart/form-data")
    return IngestResponse(**report.model_dump(include=set(IngestResponse.model_fields)))


@router.get("/v1/documents", response_model=list[DocumentInfo], dependencies=[ReadAuth],
            summary="List documents")
def list_documents(library: LibraryDep, ticker: str | None = Query(None, max_length=100),
                   doc_type: str | None = Query(None, max_length=100)) -> list[DocumentInfo]:
    return library.list_documents(SearchFilters(tickers=[ticker] if ticker else None,
                                                doc_types=[doc_type] if doc_type else None))


@router.get("/v1/documents/{doc_id}", response_model=Document, dependencies=[ReadAuth],
            responses={404: {"model": ErrorBody}}, summary="One document with its text")
def get_document(doc_id: str, library: LibraryDep) -> Document:
    return library.get_document(doc_id)


@router.delete("/v1/documents/{doc_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[WriteAuth],
               responses={404: {"model": ErrorBody}, 401: {"model": ErrorBody}}, summary="Delete a document")
def delete_document(doc_id: str, library: LibraryDep) -> Response:
    library.delete(doc_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
