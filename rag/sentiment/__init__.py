"""Document and ticker sentiment: scoring (one document, any model), the versioned journal, batch rescoring and
the service the library exposes."""
