"""The offline answerer's choice of sentence, on passages modelled on earnings-call misses of the earnings dev split
(each case was answered wrongly, or not at all, before the rule it tests). No embedder: coverage alone decides."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rag.providers.extractive import NOT_FOUND, answer, focus_terms


@pytest.mark.parametrize(("question", "passages", "expected", "company"), [
    pytest.param(
        "What free cash flow did Embraer generate in the second quarter of 2021?",
        ["We had 181 million of free cash flow usage in the first half of the year, so we expect to generate up to "
         "180 million of cash in the second half of 2021.",
         "Free cash flow in the second quarter was positively 45 million, 272 million higher than first quarter."],
        "positively 45 million", "Embraer", id="another-half-of-the-same-year-is-another-period"),
    pytest.param(
        "How much headcount did GE take out of Power in Q1 2020?",
        ["Power orders were down 8% organically in the first quarter, and we expect the market to stay challenged.",
         "To offset this we're right-sizing the cost structure, and in Power we already reduced head count by 700 in "
         "the first quarter."],
        "by 700", "General Electric", id="head-count-is-headcount"),
    pytest.param(
        "What is Nexstar guiding for operating cash taxes in Q3?",
        ["Third quarter non-operating cash taxes are now estimated to be approximately $83 million.",
         "Third quarter operating cash taxes are now estimated to be approximately $150 million."],
        "$150 million", "Nexstar Media Group", id="non-operating-is-not-operating"),
    pytest.param(
        "What was SiTime's non-GAAP gross margin in the third quarter of 2020?",
        ["Non-GAAP gross margins during the quarter were 52.1%, up 530 basis points over Q2.",
         "We expect continued gross margin expansion with non-GAAP gross margins increasing to approximately 53%."],
        "52.1%", "SiTime", id="the-period-compared-with-is-not-the-period-reported"),
    pytest.param(
        "How did Hershey's Halloween season perform?",
        ["If I look back at, uh, Halloween, I'm cu, curious if you split the season apart, how each piece performed.",
         "Within the season, the early part of the season performed more strongly than the trick-or-treat part."],
        "early part of the season", "Hershey", id="an-analyst-asking-without-a-question-mark-is-not-quoted"),
    pytest.param(
        "How much does LATAM plan to grow cargo capacity in 2020?",
        ["We are also correcting cargo capacity to increase between four to six percent this year.",
         "Passenger capacity rose 9% while traffic grew 3.8% and the load factor was 78.3%."],
        "four to six percent", "LATAM Airlines", id="plan-asks-for-an-outlook-and-is-not-a-topic-word"),
    pytest.param(
        "What was MTN Ghana's reported EBITDA margin for 2020?",
        ["Our reported earnings before interest, tax, depreciation, and amortization grew by 20.8%, with a margin "
         "expansion of 1.9 percentage points to 52.7%.",
         "Our EBITDA guidance for the year remains unchanged, and margins should stay broadly stable."],
        "52.7%", "MTN Ghana", id="an-acronym-asked-is-said-in-full"),
    pytest.param(
        "Why did Innovative Solutions and Support's gross margin slip in the fourth quarter?",
        ["Gross margin for the quarter was 57%, driven by a richer mix of new equipment sales.",
         "Gross margins for the quarter were 55.8%, down from 59.5% a year ago, attributable to product mix."],
        "55.8%", "Innovative Solutions and Support", id="slip-is-a-decline"),
    pytest.param(
        "What did Embraer say was notable about its second-quarter 2021 net result?",
        ["All participants will now watch our second quarter results presentation on the webcast.",
         "This represents the first net profit on a quarterly basis since 2018."],
        "first net profit", "Embraer", id="a-net-result-is-a-net-profit-and-notable-asks-no-word"),
    pytest.param(
        "How much capital expenditure did MTN Ghana invest in 2019?",
        ["In terms of capex, we invested GH1.1 billion in support of the growth in the core business.",
         "Capital allocation will favour the network, and we invest ahead of demand in new sites."],
        "GH1.1 billion", "MTN Ghana", id="capital-expenditure-is-capex"),
    pytest.param(
        "What dividend growth are they targeting?",
        ["We continue to expect to grow our dividends per share at roughly 10% per year through at least 2022.",
         "The pipeline is now scheduled for a full in-service date during early 2021 at a lower cost."],
        "roughly 10% per year", "NextEra Energy", id="targeting-is-not-a-price-target"),
    pytest.param(
        "And what share of sales came from direct-to-consumer?",
        ["Direct-to-consumer net sales grew 62% to $150.4 million, driven by coolers and drinkware.",
         "Overall, DTC reached 51% of net sales for the period compared to 41% in last year's period."],
        "51% of net sales", "YETI", id="initials-stand-for-their-hyphenated-compound-and-a-percent-of-is-a-share"),
    pytest.param(
        "How many new online customers has Bed Bath & Beyond gained so far in fiscal 2020?",
        ["During the quarter, we gained 2.2 million new online customers across our banners.",
         "Year to date we have gained approximately seven million new online customers."],
        "seven million", "Bed Bath & Beyond", id="so-far-is-year-to-date"),
    pytest.param(
        "What net income did Acme report for its fiscal 2020 fourth quarter?",
        ["Acme reported fiscal 2020 net income of 3.3 million, up 74% from fiscal 2019.",
         "In the fourth quarter, Acme net income was 1.2 million."],
        "1.2 million", "Acme", id="a-fiscal-year-figure-does-not-answer-a-quarter"),
    pytest.param(
        "What did PointsBet say about customer acquisition costs?",
        ["And then I wanted, um, to ask about customer acquisition costs.",
         "Customer acquisition costs per new customer fell as the brand matured."],
        "fell as the brand matured", "PointsBet", id="an-analyst-who-wanted-to-ask-is-not-quoted"),
    pytest.param(
        "What are Trip.com's expectations for domestic travel recovery?",
        ["So my question is about domestic travel, uh, recovery expectation.",
         "We expect a full domestic travel recovery to pre-COVID levels as restrictions ease in the coming quarters."],
        "pre-COVID levels", "Trip.com Group", id="an-analyst-stating-my-question-is-not-quoted"),
    pytest.param(
        "What did the CEO of Hershey say about e-commerce?",
        ["Joining me today is our Chairman and CEO, and our CFO, who will walk through the quarter.",
         "For us, our eCommerce business has seen very significant growth, particularly in click and collect."],
        "click and collect", "Hershey", id="the-ceo-who-speaks-is-no-topic"),
    pytest.param(
        "What was YETI's adjusted EBITDA margin in the quarter?",
        ["The ratio of total net debt to adjusted EBITDA for the trailing 12 months was essentially zero.",
         "Adjusted EBITDA increased 84% to $80.2 million or 27.2% of net sales."],
        "27.2% of net sales", "YETI", id="an-ebitda-margin-is-one-metric-and-a-share-of-sales-states-it"),
    pytest.param(
        "What did KB Financial say about the net interest margin?",
        ["Loan growth was solid at 3% and deposits grew 2% in the quarter.",
         "Group and bank NIM posted 1.84% and 1.56%, up 5 basis points on quarter."],
        "NIM posted", "KB Financial", id="an-acronym-stands-for-three-words-in-a-row"),
    pytest.param(
        "What greenhouse gas emissions target has ConocoPhillips committed to?",
        ["ConocoPhillips gets the benefits of adding some of the best resources in the world.",
         "We target a 35% to 45% reduction in the intensity of our greenhouse gas emissions by 2030."],
        "35% to 45%", "ConocoPhillips", id="an-acronym-counts-only-written-in-capitals"),
    pytest.param(
        "What did Constellium say about aerospace demand?",
        ["Okay, and just m- my last related question is, um, utilization for aerospace demand was around 60%.",
         "And can we assume that aerospace demand stays at 60% utilization next year.",
         "Aerospace demand remained weak, with shipments down 38% as airlines cut capacity."],
        "down 38%", "Constellium", id="an-analyst-with-a-last-related-question-or-an-assumption-is-not-quoted"),
    pytest.param(
        "What was the operating margin at Texas Instruments?",
        ["On a trailing 12 month basis, operating expenses were 18% of revenue.",
         "Operating profit was $2.3 billion, or 50% of revenue, up 54% from the same quarter a year ago."],
        "50% of revenue", "Texas Instruments", id="an-expense-share-of-revenue-is-no-margin-and-operating-no-customer"),
    pytest.param(
        "What EPS did they report for the quarter?",
        ["We declared a quarterly dividend of $0.10 per share, payable in January.",
         "We reported quarterly net income of 1.2 million or seven cents per share."],
        "seven cents per share", "Innovative Solutions and Support", id="eps-is-a-figure-per-share-not-a-dividend"),
    pytest.param(
        "How many stores did they open in fiscal 2020?",
        ["Fiscal 2020 brought new fiscal controls to our 12 stores and warehouses.",
         "We opened 14 new stores during the year in our core markets."],
        "opened 14 new stores", "Monro", id="fiscal-says-when-not-what"),
    pytest.param(
        "What was Tecnoglass's adjusted EBITDA margin?",
        ["Adjusted EBITDA margin was 29.7%.", "Gross margin improved on better pricing and mix across the business."],
        "29.7%", "Tecnoglass", id="a-short-line-stating-a-figure-is-a-sentence-not-a-label"),
    pytest.param(
        "How much cash did Nexstar hold at the end of June 2020?",
        ["We continue to maintain a strong balance sheet, including 665 million cash on hand at June 30."],
        "665 million", "Nexstar Media Group", id="hold-is-how-cash-is-asked-about-not-a-topic"),
    pytest.param(
        "How did LATAM's passenger traffic change?",
        ["So, at this point in time, we only have made, uh, the change in Milan to our 12 passenger flights.",
         "Traffic fell 4.1% on the year as we carried 74 million passengers."],
        "fell 4.1%", "LATAM Airlines", id="how-did-it-change-asks-for-the-movement-not-about-change"),
    pytest.param(
        "How much did Monro's comparable store sales decline?",
        ["Compared with last year, store sales declined 2% in the quarter as we closed 12 stores.",
         "In January our comparable store sales declined 4% on lower tire volume."],
        "declined 4%", "Monro", id="comparable-store-sales-is-a-metric-not-a-request-to-compare"),
    pytest.param(
        "What capex did ConocoPhillips guide for 2021?",
        ["Uh, you indicated in your prepared remarks that 2021 capex guidance should be about $4.5 billion.",
         "We see 2021 capex of about $4.4 billion."],
        "$4.4 billion", "ConocoPhillips", id="an-analyst-restating-the-prepared-remarks-is-not-quoted"),
    pytest.param(
        "What is Hepsiburada guiding for full-year GMV?",
        ["We are committed to investing in and delivering strong full year GMV within 28 to 29 billion lira range.",
         "Hence, the GMV shift to 3P is expected to have strategic advantages in the long term."],
        "28 to 29 billion", "Hepsiburada", id="a-commitment-to-a-figure-is-guidance"),
    pytest.param(
        "What capex is Acme guiding for next year?",
        ["Capex guidance for this year was $35 million, in line with the prior year.",
         "We are planning to spend $40 million on capex next year."],
        "$40 million", "Acme", id="planning-to-spend-is-guidance"),
    pytest.param(
        "What was Acme's full-year revenue in fiscal 2021?",
        ["In the fourth quarter of fiscal 2021, revenue was $50 million.",
         "Fiscal 2021 revenue was $200 million, up 20%."],
        "$200 million", "Acme", id="a-quarter-of-a-fiscal-year-does-not-answer-the-year"),
    pytest.param(
        "What was Acme's gross margin in the fourth quarter?",
        ["For the year, gross margin was 38%, a record.",
         "Gross margin for the year ago quarter was 40% and rose to 41% this quarter."],
        "41%", "Acme", id="for-the-year-is-a-full-year-and-the-year-ago-quarter-is-not"),
    pytest.param(
        "What was Calix's revenue in the fourth quarter?",
        ["Investor returns will track platform adoption (Calix One, SmartHome) and Calix software revenue.",
         "Calix reported Q4 revenue of $206 million, up 2.6% and at the high end of guidance."],
        "$206 million", "Calix", id="a-number-word-in-a-name-is-no-number-and-beating-guidance-is-no-outlook"),
    pytest.param(
        "What revenue did Acme guide for next year?",
        ["Revenue of $206 million came in at the high end of guidance, and we see more next year.",
         "We forecast revenue of $900 million next year."],
        "$900 million", "Acme", id="a-result-measured-against-guidance-does-not-guide"),
    pytest.param(
        "Where did Acme's revenue land relative to guidance?",
        ["Revenue landed at $206 million, at the high end of guidance.",
         "Acme expects to land within guidance next year."],
        "$206 million", "Acme", id="a-question-measuring-against-guidance-is-no-outlook-question"),
    pytest.param(
        "What GAAP gross margin did ADTRAN report for the third quarter of 2020?",
        ["GAAP gross margin was a focus for the third quarter of 2020, helped by product mix.",
         "Our GAAP gross margins for the third quarter of this year was 44.3% as compared 41.5% last quarter, and "
         "40.6% in the third quarter of 2019."],
        "44.3%", "ADTRAN", id="as-compared-without-to-still-compares"),
    pytest.param(
        "What gross margin did ADTRAN report for the third quarter?",
        ["Non-GAAP gross margin for quarter three was 44.5%, up from 41.6% in the prior quarter.",
         "Our GAAP gross margin for the third quarter was 44.3%, up from 41.5% in the prior quarter."],
        "44.3%", "ADTRAN", id="non-gaap-is-another-basis-than-the-reported-one"),
    pytest.param(
        "What did Embraer say was notable about its second-quarter 2021 net result?",
        ["Services and support was at 19% of revenue, and the next chart shows our adjusted net income.",
         "This represents the first net profit on a quarterly basis since 2018."],
        "first net profit", "Embraer", id="what-a-company-said-was-notable-asks-for-a-statement-not-a-figure"),
    pytest.param(
        "What adjusted EBITDA is Bed Bath & Beyond targeting for fiscal 2021, as given on its third-quarter fiscal "
        "2020 call?",
        ["Adjusted EBITDA was $121 million in the third quarter of fiscal 2020.",
         "We are enhancing adjusted fiscal year 2021 EBITDA to a range of between 500 to $525 million."],
        "500 to $525 million", "Bed Bath & Beyond", id="the-call-a-figure-was-given-on-is-not-the-period-asked"),
    pytest.param(
        "What net income did FPL, NextEra Energy's Florida utility, report for the second quarter of 2020?",
        ["Regulatory capital employed increased by more than 10%, a principal driver of FPL's net income growth.",
         "For the second quarter of 2020, FPL reported a net income of $749 million."],
        "$749 million", "NextEra Energy", id="a-description-between-commas-need-not-be-in-the-answer"),
    pytest.param(
        "What adjusted EPS range does NextEra Energy expect for 2020?",
        ["We expect our adjusted EPS, compound annual growth rate, to be in a range of 6% to 8%, through 202.",
         "For 2020, we expect adjusted EPS of $8.70 to $9.20, the range we gave in January."],
        "$8.70", "NextEra Energy", id="a-year-cut-short-at-the-end-of-a-sentence-is-no-figure"),
    pytest.param(
        "What were Dentsply Sirona's revenues in the second quarter of 2020?",
        ["This business is a component of the consumables segment and had net sales of approximately 44 million.",
         "Second quarter revenues were $491 million, down 50% on an organic basis."],
        "$491 million", "Dentsply Sirona", id="a-segments-sales-are-part-of-the-revenue-asked"),
    pytest.param(
        "What did Nexstar post for distribution revenue in Q2 2020?",
        ["Second quarter direct operating expenses, were approximately 414 million, a partial offset to our rising "
         "distribution revenue.",
         "Distribution revenue rose 71% in the second quarter, to 536.5 million."],
        "536.5 million", "Nexstar Media Group", id="a-cost-opening-a-sentence-owns-its-figure"),
    pytest.param(
        "What did Nexstar post for distribution revenue in Q2 2020?",
        ["Distribution revenue, one of two legs to the stool, has been strong in the second quarter.",
         "Distribution revenue rose 71% in the second quarter, to 536.5 million."],
        "536.5 million", "Nexstar Media Group", id="an-amount-of-money-asked-is-no-count-of-legs"),
    pytest.param(
        "SiTime Q4 2020 revenue outlook?",
        ["We anticipate that continued strength in the fourth quarter will allow SiTime to set another quarterly "
         "revenue record.",
         "We expect fourth quarter revenue will be up 10 to 15% sequentially."],
        "10 to 15%", "SiTime", id="a-metric-asked-without-a-question-word-asks-its-figure"),
    pytest.param(
        "What pushed ZAGG's gross margin down in Q3 2020?",
        ["Q3 gross margin declined year-over-year, to 33% of net sales.",
         "Gross margin declined as the tariff benefit was offset by higher expedited airfreight rates."],
        "airfreight", "ZAGG", id="what-pushed-asks-why-and-offset-by-answers"),
    pytest.param(
        "Which spent more on R&D in Q2 2020, Affimed or Aldeyra?",
        ["Losses have resulted from the cost of clinical trials, as our spending continued in Q2 2020.",
         "Research and development expenses were $4.9 million for the quarter ended June 30, 2020."],
        "$4.9 million", "Aldeyra Therapeutics", id="spending-is-an-expense-and-r-and-d-is-research-and-development"),
    pytest.param(
        "What were REV Group's fourth-quarter sales?",
        ["Turning to slide five, commercial segment fourth quarter sales were 91 million, a decrease of 56 million.",
         "Fourth quarter sales of 616 million were up 6% sequentially."],
        "616 million", "REV Group", id="a-named-segments-sales-are-part-of-the-sales-asked"),
    pytest.param(
        "What cash did ADTRAN hold at the end of Q3 2020?",
        ["For the quarter, we used $7 million of cash from operations.",
         "Unrestricted cash and marketable securities totaled $132.2 million by quarter end."],
        "$132.2 million", "ADTRAN", id="cash-held-is-not-cash-used"),
    pytest.param(
        "How much cash did ADTRAN use in the third quarter?",
        ["Unrestricted cash and marketable securities totaled $132.2 million by the end of the third quarter.",
         "For the third quarter, we used $7 million of cash from operations."],
        "$7 million", "ADTRAN", id="cash-used-asked-is-a-cash-flow"),
    pytest.param(
        "What was ADTRAN's cash from operations in the third quarter?",
        ["With operations running at full capacity, we ended the third quarter with $132.2 million of cash.",
         "Cash from operations was $7 million in the third quarter."],
        "$7 million", "ADTRAN", id="a-cash-flow-asked-is-no-cash-held"),
    pytest.param(
        "What's Embraer's delivery outlook for the full year?",
        ["Year to date, executive aviation delivered 33 aircraft, a 50% increase.",
         "We expect to deliver between 45 to 50 commercial aircraft in 2021."],
        "45 to 50", "Embraer", id="a-delivery-is-what-is-delivered"),
    # The rules above, where they must not fire (found by a review of the change).
    pytest.param(
        "What did Lands' End say its third-quarter net revenue was?",
        ["Net revenue in the third quarter reflected strong demand across our channels.",
         "Third quarter net revenue was $318.8 million, up 4.9%."],
        "$318.8 million", "Lands' End", id="what-a-company-said-a-figure-was-asks-for-the-figure"),
    pytest.param(
        "In Q3, the gross margin at YETI fell sharply, what drove the decline?",
        ["Gross margin fell 120 basis points, driven by higher freight costs and promotional activity.",
         "The decline in wholesale orders was driven by retailer destocking.",
         "Revenue rose 12% to $320 million."],
        "higher freight costs", "YETI", id="a-clause-after-a-period-is-no-description"),
    pytest.param(
        "What was Acme's revenue in the third quarter?",
        ["Third quarter revenue was $512 million, up 8%, with growth in all three segments.",
         "Revenue in the third quarter was affected by 3 fewer selling days."],
        "$512 million", "Acme", id="growth-in-all-segments-is-the-whole"),
    pytest.param(
        "What was Acme's revenue in the third quarter?",
        ["Third quarter revenue was $512 million, with growth in each segment.",
         "Third quarter revenue was affected by 3 fewer selling days, about $5 million."],
        "$512 million", "Acme", id="growth-in-each-segment-is-the-whole"),
    pytest.param(
        "What revenue per unit did Acme report in the third quarter?",
        ["Revenue per unit in our Rental segment was $1,450 in the third quarter.",
         "Revenue per unit in the third quarter was $1,210, up 4%."],
        "$1,210", "Acme", id="per-unit-names-no-business-unit"),
    pytest.param(
        "What was Acme's adjusted EPS in the third quarter?",
        ["Non-GAAP adjusted EPS for the third quarter was $1.12, up 10%.",
         "Adjusted EPS in the third quarter included a tax benefit of 5 cents."],
        "$1.12", "Acme", id="an-adjusted-figure-asked-is-the-non-gaap-one"),
    pytest.param(
        "How many new stores did Acme open in 2020?",
        ["In 2020 we opened new stores, bringing the total number of stores to 201.",
         "New stores opened in 2020 were smaller, at around 3,000 square feet."],
        "201", "Acme", id="a-count-at-the-end-of-a-sentence-is-no-year-cut-short"),
    pytest.param(
        "What fourth-quarter revenue did Acme report in its fiscal 2021 report?",
        ["Fourth quarter revenue in fiscal 2020 was $410 million.",
         "Fourth quarter revenue was $455 million, a record for the company."],
        "$455 million", "Acme", id="the-reports-year-is-the-year-asked-when-the-question-names-no-other"),
])
def test_the_sentence_that_answers_is_quoted(question: str, passages: list[str], expected: str, company: str) -> None:
    text = answer(question, dict(enumerate(passages, start=1)), companies=dict.fromkeys(range(1, len(passages) + 1),
                                                                                       company))
    assert expected in text, text
    assert text.count("[") == 1  # one sentence, one citation


def test_the_month_a_quarter_ended_dates_the_question_and_is_not_its_topic() -> None:
    title = "Dr. Reddy's Laboratories Q3 2022 Earnings Call"  # its fiscal Q3 2022 ended in December 2021
    passages = {1: "This is the earnings conference call of the company for the quarter ended December 31st, 2021.",
                2: "The EBITDA for the quarter is 1,266 crores and the EBITDA margin is 23.8%."}
    text = answer("What EBITDA margin did Dr. Reddy's report for the quarter ended December 2021?", passages,
                  companies={1: "Dr. Reddy's Laboratories", 2: "Dr. Reddy's Laboratories"}, titles={1: title, 2: title})
    assert text == "The EBITDA for the quarter is 1,266 crores and the EBITDA margin is 23.8%. [2]"


def test_another_quarter_of_the_same_year_still_does_not_answer_alone() -> None:
    passages = {1: "Free cash flow in the first quarter of 2021 was a use of 227 million, as usual for the season."}
    assert answer("What free cash flow did Embraer generate in the second quarter of 2021?", passages,
                  companies={1: "Embraer"}) == NOT_FOUND


def test_a_list_gathers_companies_that_answer_either_side_of_an_or() -> None:
    passages = {1: "Our cash taxes this year were materially reduced by lower operating performance and CARES Act "
                   "benefits.",
                2: "The effective tax rate was 136.4% for the quarter, reflecting the reversal of the CARES Act tax "
                   "benefit recorded earlier.",
                3: "We also drew on the loan received under the CARES Act to secure our financing for the year.",
                4: "Unit volumes rose in every region and the new factory is running at full capacity now."}
    companies = {1: "Cumulus Media", 2: "GCP Applied Technologies", 3: "ZAGG", 4: "Acme Foods"}
    text = answer("Which companies said the CARES Act affected their taxes or financing?", passages,
                  companies=companies)
    assert all(f"{name}:" in text for name in ("Cumulus Media", "GCP Applied Technologies", "ZAGG")), text
    assert "Acme" not in text


def test_an_example_after_such_as_speaks_for_the_words_before_it() -> None:
    passages = {1: "Sales slowed in August after the hurricanes closed many of our Gulf Coast stores for a week.",
                2: "Revenue fell in the quarter, mainly due to natural disasters and new rounds of lockdowns.",
                3: "Orders weighed on the business as distributors cut inventory ahead of the new season."}
    companies = {1: "Gulf Retail", 2: "Trip Group", 3: "Acme Tools"}
    text = answer("Which companies said natural disasters such as hurricanes or earthquakes weighed on sales?",
                  passages, companies=companies)
    assert "Gulf Retail:" in text and "Trip Group:" in text, text
    assert "Acme" not in text


def test_the_topic_ends_where_its_setting_begins() -> None:
    # The rarest word of the whole phrase is "pandemic", which no sentence says.
    passages = {1: "Around 19% of our loan portfolio is under the payment holiday program for individuals and SMEs.",
                2: "Our customers kept travelling this year, and demand for the holiday season is very strong.",
                3: "Our customers responded well to the new loyalty scheme, and card spending rose 12% in June."}
    companies = {1: "Banco Norte", 2: "Trip Group", 3: "Card Co"}
    text = answer("Which companies talked about payment holiday programs for customers during the pandemic?",
                  passages, companies=companies)
    assert text.startswith("Banco Norte: Around 19%"), text
    assert "Trip Group" not in text


def test_a_word_of_another_companys_name_is_a_topic_word_where_the_question_does_not_capitalise_it() -> None:
    passages = {1: "Freight costs stayed high all year, and we absorbed most of them.",
                2: "Energy costs at our distribution centers rose 12% this year.",
                3: "Costs of the storm restoration will be recovered through customer rates."}
    companies = {1: "Lands' End", 2: "Lands' End", 3: "NextEra Energy"}
    text = answer("What did Lands' End say about energy costs?", passages, companies=companies)
    assert text == "Energy costs at our distribution centers rose 12% this year. [2]"
    # Capitalised, the word is the name, which the company's own sentences seldom say.
    passages = {1: "Costs of the storm restoration will be recovered through customer rates over two years."}
    text = answer("What did NextEra Energy say about storm restoration costs?", passages,
                  companies={1: "NextEra Energy"})
    assert text.startswith("Costs of the storm restoration"), text


def test_a_lists_setting_is_not_its_topic() -> None:
    # No sentence says "pandemic": the calls say what happened, the question says when.
    passages = {1: "Operating expenses were higher in the quarter as demand at our stores fell.",
                2: "We saw bad debt expense increase by $3 million as customers fell behind on their bills.",
                3: "Bad debt expense was $8.8 million for the quarter, and we expect it to ease."}
    companies = {1: "Acme Stores", 2: "Gas Co", 3: "Power Co"}
    text = answer("Which utilities saw higher bad debt expense because of the pandemic?", passages,
                  companies=companies)
    assert text.startswith("Gas Co: We saw bad debt expense increase"), text
    assert "Acme" not in text
    # A period in that place narrows the topic.
    passages = {1: "We raised prices by 5% across the portfolio in the third quarter.",
                2: "We raised prices by 3% across the portfolio in the second quarter."}
    text = answer("Which companies raised prices during the second quarter?", passages,
                  companies={1: "Acme", 2: "Beta"})
    assert text == "Beta: We raised prices by 3% across the portfolio in the second quarter. [2]"


def test_another_companys_list_item_shares_two_words_with_the_question() -> None:
    # "stores" is common in these calls, so "closed" alone nearly covers the question.
    passages = {1: "We closed 40 underperforming stores in the quarter as part of our plan. Traffic in our stores "
                   "rose 4% in the quarter. Our stores now carry the new brands. Store staff did a remarkable job this "
                   "season.",
                2: "Sales to schools fell sharply because schools were closed for most of the quarter.",
                3: "We closed 12 stores in markets where leases expired. Stores in the south did best. Our store "
                   "remodels are on plan for the year. Store hours were extended for the holidays."}
    text = answer("Which retailers closed stores?", passages,
                  companies={1: "Home Goods", 2: "Candy Co", 3: "Auto Care"})
    assert "Auto Care: We closed 12 stores" in text and "Home Goods: We closed 40" in text, text
    assert "Candy Co" not in text


def test_a_sentence_that_only_opens_the_topic_is_quoted_with_the_next() -> None:
    passages = {1: "I’d like to provide an update on the Tribeca House litigation. The appellate court ruled in June "
                   "that the units are exempt, which we expect to limit our financial exposure. Occupancy was 93%."}
    text = answer("What did Clipper say about the Tribeca House litigation?", passages, companies={1: "Clipper"})
    assert text.startswith("I’d like to provide an update") and "limit our financial exposure" in text, text
    # Saying something of the topic, it is the answer on its own.
    passages = {1: "Turning to the Tribeca House litigation, the court ruled in our favour in June. We will keep "
                   "you informed as the case develops."}
    text = answer("What did Clipper say about the Tribeca House litigation?", passages, companies={1: "Clipper"})
    assert text == "Turning to the Tribeca House litigation, the court ruled in our favour in June. [1]"


def test_the_safe_harbour_notice_is_no_answer() -> None:
    passages = {1: "These statements include expectations and assumptions regarding the company's future operations "
                   "and financial performance, including the impact of the COVID-19 pandemic on guidance.",
                2: "We will not be providing guidance for the year given the uncertainty of the pandemic."}
    text = answer("Which companies talked about guidance for the year and the pandemic?", passages,
                  companies={1: "Candy Co", 2: "Freight Co"})
    assert text == "We will not be providing guidance for the year given the uncertainty of the pandemic. [2]"


def test_a_topic_ends_where_its_setting_begins_for_one_company_too() -> None:
    passages = {1: "Around 19% of our loan portfolio is under the payment holiday program for individuals and SMEs.",
                2: "Our customers kept travelling this year, and demand for the holiday season is very strong."}
    text = answer("What did Banco Norte say about payment holiday programs for customers during the pandemic?",
                  passages, companies={1: "Banco Norte", 2: "Banco Norte"})
    assert text == f"{passages[1]} [1]"


def test_a_question_in_one_case_names_companies_in_any_case() -> None:
    passages = {1: "Storm restoration costs will be recovered through customer rates over two years."}
    for question in ("what did nextera energy say about storm restoration costs?",
                     "What Did NextEra Energy Say About Storm Restoration Costs?"):
        assert answer(question, passages, companies={1: "NextEra Energy"}).startswith("Storm restoration"), question


def test_a_ticker_is_ignored_only_where_the_question_writes_it() -> None:
    passages = {1: "Results for the season were strong across the range, with deliveries up 12%.",
                2: "Our race results this season were the best in a decade, with four wins in six races."}
    text = answer("What did Ferrari say about its race results this season?", passages,
                  companies={1: "Ferrari", 2: "Ferrari"}, tickers={1: ["RACE"], 2: ["RACE"]})
    assert text == f"{passages[2]} [2]"


def test_a_one_word_list_question_lists_every_company_that_says_it() -> None:
    passages = {1: "Tariffs on imported fabrics cost us about $2 million in the quarter.",
                2: "The new tariffs will be passed on to customers from January."}
    text = answer("Which companies mentioned tariffs?", passages, companies={1: "Culp", 2: "YETI"})
    assert "Culp:" in text and "YETI:" in text, text


@pytest.mark.parametrize(("question", "texts", "companies", "listed"), [
    # Alternatives either side of a slash answer alike.
    ("Which companies commented on Black Friday / Cyber Monday?",
     ["Market wide Black Friday in-store traffic was down by over 50% this holiday season.",
      "Cyber Monday was the biggest online sales day in our history.",
      "Our stores reopened on a Friday in May, and traffic recovered through the summer."],
     ["Bed Bath & Beyond", "Lands' End", "Acme Stores"], ["Bed Bath & Beyond", "Lands' End"]),
    # How a topic affects the business is the topic: "affect", rarer among the sentences than "tariff", weighed most
    # while it was a topic word.
    ("Which companies discussed how tariffs affect their business?",
     ["And we would avoid a section 301 tariff on the fabrics we bring in from China.",
      "And in terms of how that affects the discount rate, the long haul travel has not come back.",
      "Just to mention that the government is imposing a 30% tariff on the inputs of cement."],
     ["Culp", "American Express", "Cementos Argos"], ["Culp", "Cementos Argos"]),
])
def test_a_list_names_the_companies_that_speak_of_its_topic(question: str, texts: list[str], companies: list[str],
                                                            listed: list[str]) -> None:
    text = answer(question, dict(enumerate(texts, 1)), companies=dict(enumerate(companies, 1)))
    assert [name for name in companies if f"{name}:" in text] == listed, text


def test_a_setting_few_companies_speak_of_is_the_point() -> None:
    passages = {1: "Sales fell 6% as supply chain disruptions held back shipments of our coolers.",
                2: "Sales fell 3% on weaker demand in Europe, while the U.S. was flat.",
                3: "Margins improved on price increases and a richer mix of premium products."}
    text = answer("Which companies said sales fell due to supply chain disruptions?", passages,
                  companies={1: "Acme", 2: "Beta", 3: "Gamma"})
    assert text.startswith("Acme: Sales fell 6%") and "Beta" not in text, text


def test_vocabulary_rules_keep_to_their_phrase() -> None:
    # "The net result of..." is an idiom, not a net profit.
    assert answer("What was Acme's net profit in the quarter?",
                  {1: "The net result of these actions is a leaner cost base for the years ahead."},
                  companies={1: "Acme"}) == NOT_FOUND
    # An acronym asked is found said in full with its stopwords ("cost of goods sold").
    text = answer("What were Acme's COGS in the quarter?",
                  {1: "Revenue was $90 million in the quarter, up 4%.",
                   2: "Cost of goods sold was $40 million in the quarter, on lower freight."},
                  companies={1: "Acme", 2: "Acme"})
    assert text == "Cost of goods sold was $40 million in the quarter, on lower freight. [2]"


def test_business_is_not_a_topic_word() -> None:
    passages = {1: "You know, this is on all our business, but I'll focus on offshore wind since that's the topic.",
                2: "In offshore wind, certification for our industry leading turbine, the Haliade-X, remains on track.",
                3: "We are operating one offshore wind farm together with Equinor and are building two more."}
    companies = {1: "Eversource Energy", 2: "General Electric", 3: "RWE"}
    text = answer("Which companies talked about their offshore wind business?", passages, companies=companies)
    assert "General Electric:" in text and "RWE:" in text, text


def test_words_asked_together_are_preferred_together() -> None:
    passages = {1: "The board declared an interim dividend of two pesewas per share after the half-year review.",
                2: "The board is recommending a final dividend of four pesewas per share, bringing the total dividend "
                   "for 2019 to six pesewas per share."}
    text = answer("What total dividend per share did MTN Ghana declare for 2019?", passages,
                  companies={1: "MTN Ghana", 2: "MTN Ghana"})
    assert "six pesewas" in text and "[2]" in text and "[1]" not in text, text


def test_the_end_of_a_month_is_a_date_not_a_topic() -> None:
    passages = {1: "Cash, cash equivalents and marketable securities as of June 30, 2020, plus the offering proceeds, "
                   "are expected to be sufficient to fund operations through the end of 2022.",
                2: "As of June 30, 2020, cash, cash equivalents and marketable securities were $66.2 million."}
    text = answer("How much cash and marketable securities did Aldeyra hold at the end of June 2020?", passages,
                  companies={1: "Aldeyra Therapeutics", 2: "Aldeyra Therapeutics"})
    assert "$66.2 million" in text and "[1]" not in text, text


def test_now_is_not_a_topic_word() -> None:
    passages = {1: "A growing pipeline is driving the increase in our acquisition guidance up to 300 to 375 million "
                   "for the year.",
                2: "These targeted acquisitions are located in six markets where we already are invested now."}
    text = answer("What acquisition volume does Healthcare Realty now expect for 2020?", passages,
                  companies={1: "Healthcare Realty Trust", 2: "Healthcare Realty Trust"})
    assert "300 to 375 million" in text, text


@pytest.mark.parametrize(("question", "passages", "expected"), [
    pytest.param("What was Acme's adjusted EBITDA in the third quarter of 2020?",
                 ["Adjusted EBITDA was $412 million, up 6% over the third quarter of 2019.",
                  "Adjusted EBITDA margin in the services segment expanded to 18%, helped by cost actions."],
                 "$412 million", id="the-year-compared-with-is-not-the-year-reported"),
    pytest.param("What was Acme's gross margin in the third quarter of 2020?",
                 ["Gross margin was 44.3% compared to 41.5% in the second quarter of 2020.",
                  "We expect gross margin to reach 45% next year as the new plant ramps."],
                 "44.3%", id="nothing-after-compared-to-is-the-period-reported"),
    pytest.param("How much did Acme's passenger traffic fall in April?",
                 ["Passenger traffic fell 40% in March as borders closed across the region.",
                  "In April, passenger traffic fell 95% from a year earlier as flights were grounded."],
                 "95%", id="a-month-asked-about-is-a-topic"),
    pytest.param("What did Acme say about end market demand?",
                 ["Market demand for respirators rose sharply in the quarter as hospitals restocked.",
                  "Demand in our end markets recovered steadily through the quarter in every region."],
                 "end markets", id="end-market-is-not-the-end-of-a-month"),
    pytest.param("How much cash-on-hand did Acme have at quarter end?",
                 ["Cash, cash equivalents and marketable securities were $66.2 million at quarter end."],
                 "$66.2 million", id="a-hyphenated-compound-keeps-its-words"),
    pytest.param("What was Acme's gross margin in the quarter?",
                 ["To give some more color on gross margin, it was 45.2% in the quarter, up from 43% a year ago."],
                 "45.2%", id="management-giving-colour-is-not-an-analyst-asking"),
    pytest.param("What total dividend did Acme declare for 2019?",
                 ["The total dividend declared for 2018 was five pesewas per share after the annual review.",
                  "The board declared a final dividend, bringing the dividend for 2019 to six pesewas per share.",
                  "The total number of subscribers rose to 25 million by the end of the period."],
                 "six pesewas", id="adjacent-words-do-not-outweigh-the-wrong-year"),
    pytest.param("How did Acme's technologies and equipment segment do?",
                 ["Moving onto slide 11 where we highlight our technologies and equipment segment. Net sales were 304 "
                  "million, down 45.6% as compared to prior year."],
                 "304 million", id="moving-onto-a-slide-introduces-what-follows"),
    pytest.param("What was that growth rate the year before, in 2019? (context: How fast did Acme's Mobile Money "
                 "revenue grow in ?)",
                 ["Data revenue growth was strong at 33% in 2019.",
                  "Earnings before interest, tax, depreciation and amortization grew 12% in 2019.",
                  "Voice revenue edged down in 2019 as new lines of revenue continued to grow faster.",
                  "Mobile Money revenue increased by 28% in 2019, the year we marked its 10th anniversary."],
                 "28%", id="a-follow-up-naming-only-a-period-keeps-the-earlier-topic"),
    pytest.param("what about India? (context: Acme North America generics sales in Q3 2020?)",
                 ["The year-on-year increase reflects continued investment in sales and marketing for brands in India.",
                  "Our India business recorded sales of 1,027 crores rupees, with year-over-year growth of 7%."],
                 "1,027 crores", id="what-about-asks-what-the-earlier-question-asked"),
    pytest.param("what about India? (context: What were Acme's North America sales in Q3 FY22?)",
                 ["India sales were 980 crores in the second quarter of fiscal 2022.",
                  "India sales were 1,027 crores in the third quarter of fiscal 2022."],
                 "1,027 crores", id="what-about-asks-of-the-earlier-period"),
    pytest.param("Acme Q3 2020 revenue and sequential growth?",
                 ["The third quarter was highlighted by 30% sequential revenue growth and 100% growth in RFID.",
                  "Overall, revenues grew 30% sequentially to 24.9 million, showing strength across the business."],
                 "24.9 million", id="an-amount-and-its-change-asked-are-both-stated"),
    pytest.param("Acme cash on hand at the end of Q2 2020?",
                 ["Our hand sanitizer line sold out in the second quarter, and cash collections were strong.",
                  "As of June 30, 2020, cash, cash equivalents and marketable securities were $66.2 million."],
                 "$66.2 million", id="cash-on-hand-is-cash"),
    pytest.param("What's Acme planning to spend on capex for fiscal 2020?",
                 ["We plan to keep spending on marketing at about 4% of sales in fiscal 2020.",
                  "For the full year of fiscal 2020, we've increased our planned capital spend to $640 million."],
                 "$640 million", id="spending-on-capex-is-the-capex"),
    pytest.param("Acme order count in Q2 2021?",
                 ["Order count rose again in the second quarter, led by grocery.",
                  "Total number of orders in the second quarter were 13.1 million, a record."],
                 "13.1 million", id="a-count-asks-for-a-number"),
    pytest.param("What were Acme's revenue/EBITDA in Q3?",
                 ["Revenue in the third quarter was $52 million, up 4%.",
                  "EBITDA in the third quarter was $11 million, a margin of 21%."],
                 "$11 million", id="two-metrics-either-side-of-a-slash-are-both-asked"),
])
def test_rules_do_not_misfire(question: str, passages: list[str], expected: str) -> None:
    numbered = dict(enumerate(passages, start=1))
    text = answer(question, numbered, companies=dict.fromkeys(numbered, "Acme"),
                  titles=dict.fromkeys(numbered, "Acme Q3 2020 earnings call"))
    assert expected in text, text


def test_a_word_that_starts_a_phrase_after_or_is_no_alternative() -> None:
    passages = {1: "Earnings were $1.20 per share and we suspended formal guidance for the year.",
                2: "We suspended our dividend for the rest of the year to preserve liquidity."}
    text = answer("Which companies suspended their dividend or share repurchases?", passages,
                  companies={1: "Gamma Corp", 2: "Acme"})
    assert "Acme:" in text and "Gamma" not in text, text


def test_a_ticker_in_the_question_is_who_not_what() -> None:
    passages = {1: "Regarding inventory, dollars were up $7 million from the prior quarter and days were 112."}
    text = answer("What did TXN say about inventory?", passages, companies={1: "Texas Instruments"},
                  tickers={1: ["TXN"]})
    assert text == f"{passages[1]} [1]"


def test_a_list_marker_is_no_figure_but_an_accounting_negative_is() -> None:
    from rag.providers.extractive import _states_a_number

    assert _states_a_number("Two levers matter: (1) adoption and (2) pricing")  # "Two" is a number
    assert not _states_a_number("Levers: (1) adoption and (2) pricing")
    assert not _states_a_number("Investors track adoption of Calix One and SmartHome")
    assert all(_states_a_number(t) for t in ("Net loss was $(12) million.", "Operating income was (8) million",
                                             "Revenue Grew Ten Percent", "Calix One revenue rose 5%"))


def test_a_follow_up_of_a_follow_up_keeps_the_first_questions_company() -> None:
    from rag.providers.extractive import rewrite

    history = [("user", "What was Texas Instruments' revenue in the third quarter of 2021?"),
               ("assistant", "Third quarter revenue was $4.6 billion. [1]"),
               ("user", "And the operating margin?"), ("assistant", "Operating profit was $2.3 billion. [1]")]
    standalone = rewrite(history, "What did they guide for the fourth quarter?")
    assert standalone.startswith("What did they guide for the fourth quarter? (context: ")
    assert "Texas Instruments" in standalone and standalone.count("(context:") == 1
    assert rewrite(history, "What did Texas Instruments guide for the fourth quarter?") == \
        "What did Texas Instruments guide for the fourth quarter?"  # standalone already


def test_a_follow_up_naming_no_one_is_about_the_conversations_company() -> None:
    from rag.providers.extractive import rewrite

    history = [("user", "What was SiTime's revenue in Q3 2020?"), ("assistant", "Revenue was $32.7 million. [1]")]
    assert rewrite(history, "What was the non-GAAP gross margin?") == \
        "What was the non-GAAP gross margin? (context: What was SiTime's in Q3 2020?)"
    # Another company named, or a list question asked across the corpus: the question stands alone.
    assert rewrite(history, "What was ADTRAN's gross margin?") == "What was ADTRAN's gross margin?"
    assert rewrite(history, "Which companies discussed hydrogen?") == "Which companies discussed hydrogen?"


@pytest.mark.parametrize(("followup", "earlier", "carried"), [
    # A period named replaces the earlier one, the year stays when none is named.
    ("And for the first half?", "What was Constellium's adjusted EBITDA in the second quarter of 2020?",
     "What was Constellium's adjusted EBITDA in 2020?"),
    ("And for the full year?", "What were Eversource's recurring earnings in the first nine months of 2020?",
     "What were Eversource's recurring earnings in 2020?"),
    # A new topic replaces the earlier topic; the names, the period and an outlook asked stay.
    ("And the backlog?", "How many net new orders did The New Home Company generate in the third quarter of 2020?",
     "How many did The New Home Company in the third quarter of 2020?"),
    ("And free cash flow?", "What revenue does Embraer expect for 2021?", "What does Embraer expect for 2021?"),
    ("What about liquidity?", "What adjusted EBITDA margin did Ingersoll Rand report for Q1 2020?",
     "What did Ingersoll Rand report for Q1 2020?"),
    ("And net income?", "What were GCP Applied Technologies' sales in the second quarter?",
     "What were GCP Applied Technologies' in the second quarter?"),
    # A qualifier, a pointer back or a segment keeps the topic; a qualifier replaces the earlier one.
    ("And for Energy Resources?", "What was NextEra Energy's adjusted EPS in Q2 2020?",
     "What was NextEra Energy's adjusted EPS in Q2 2020?"),
    ("How does that compare with last year?", "What was NextEra Energy's adjusted EPS in Q2 2020?",
     "What was NextEra Energy's adjusted EPS in Q2 2020?"),
    ("How much of that was organic?", "What was Danaher's revenue growth in Q1 2020?",
     "What was Danaher's revenue growth in Q1 2020?"),
    ("What drove the increase?", "What was Enagas' net profit in the first half of 2020?",
     "What was Enagas' net profit in the first half of 2020?"),
    ("And the Fire & Emergency segment's sales?", "What was REV Group's adjusted EBITDA in Q4?",
     "What was REV Group's in Q4?"),
    # A company, segment or region named alone keeps the topic; a name is kept when the topic goes.
    ("What about Danaher?", "What was GE's free cash flow in Q1 2020?", "What was GE's free cash flow in Q1 2020?"),
    ("What about Aviation?", "How did GE's orders change in Q1 2020?", "How did GE's orders change in Q1 2020?"),
    ("And the gross margin?", "What revenue did ZAGG post for Q3 2020?", "What did ZAGG post for Q3 2020?"),
    ("And the gross margin?", "what revenue did zagg post for q3 2020?", "what revenue did zagg post for q3 2020?"),
    # A company or a metric is no segment or region to replace.
    ("And in Diagnostics?", "How did revenue grow in Danaher's Life Sciences segment in Q1 2020?",
     "How did revenue grow in Danaher's Life Sciences segment in Q1 2020?"),
    ("And in the Northeast?", "What was the growth in revenue per unit at Monro in Q3?",
     "What was the growth in revenue per unit at Monro in Q3?"),
    ("And the SBM segment?", "What were GCP Applied Technologies' sales in the second quarter?",
     "What were GCP Applied Technologies' sales in the second quarter?"),
    ("And in offshore wind?", "What was RWE's adjusted EBITDA in its core business in the first half of 2020?",
     "What was RWE's adjusted EBITDA in the first half of 2020?"),
    ("And in the Caribbean?", "How did Cementos Argos' EBITDA in Colombia change in Q1 2020?",
     "How did Cementos Argos' EBITDA change in Q1 2020?"),
    ("And for the analog segment?", "What was revenue growth for Texas Instruments in Q3?",
     "What was revenue growth for Texas Instruments in Q3?"),
])
def test_a_follow_up_keeps_the_slots_it_does_not_fill(followup: str, earlier: str, carried: str) -> None:
    from rag.providers.extractive import rewrite

    assert rewrite([("user", earlier), ("assistant", "...")], followup) == f"{followup} (context: {carried})"


def test_the_figures_a_sentence_gives_belong_to_the_metric_that_owns_them() -> None:
    from rag.providers.extractive import _clause_tokens, _owners, _states_a_number

    def owners(sentence: str) -> list[str | None]:
        return _owners(_clause_tokens(sentence))


    assert owners("Q3 gross profit as a percentage of net sales decreased to 33%.") == ["margin"]
    assert owners("A 32 million drop in revenue, and adjusted EBITDA of $15 million.") == ["revenu", "ebitda"]
    # Earnings of so much per share are EPS; a slide's number is no figure.
    assert owners("On slide two, recurring earnings were $1.02 per share.") == ["ep"]
    assert owners("We declared a quarterly dividend of $0.25 per share.") == ["dividend"]
    assert owners("Gross margin slides 120 basis points.") == ["margin"]
    # A cost owns the figures of its own clause.
    assert owners("Net income, despite elevated COVID-related costs, was $12 million.") == ["profit"]
    assert owners("As a percentage of revenue, operating expenses were lower by 280 basis points.") == ["expens"]
    assert owners("Gross margin was hurt by reserve expenses of approximately 17 million.") == ["expens"]
    assert not _states_a_number("Turning now to slide eight, you will find the change in adjusted EBITDA.")


def test_a_follow_up_to_a_comparison_compares_again() -> None:
    passages = {1: "Our quarter was punctuated by 29% sales growth across coolers and drinkware.",
                2: "Total revenues increased 26% year over year to a record 130.4 million for the third quarter."}
    text = answer("What about their revenue growth? (context: Compare the gross margins of YETI and Tecnoglass in the "
                  "third quarter.)", passages, companies={1: "YETI", 2: "Tecnoglass"})
    assert text.startswith("YETI: Our quarter") and "Tecnoglass: Total revenues increased 26%" in text


def test_a_figure_question_about_a_company_with_a_plural_name_is_no_list() -> None:
    from rag.text import is_list_question

    passages = {1: "Third quarter revenue was $4.6 billion, up 22% from a year ago. Gross profit in the quarter was "
                   "$3.2 billion or 68% of revenue. Operating expenses were 18% of revenue."}
    text = answer("What was Texas Instruments' revenue in the third quarter of 2021?", passages,
                  companies={1: "Texas Instruments"})
    assert text == "Third quarter revenue was $4.6 billion, up 22% from a year ago. [1]"
    assert not is_list_question("what were monro's sales in the third quarter?")
    assert not is_list_question("What sales does Monro now expect for fiscal 2020?")  # a figure plural in form
    assert all(is_list_question(q) for q in ("Which banks discussed cost of risk?", "What new products did they "
                                             "launch?", "Which of the companies cut capex?", "Who is the CEO?"))


def test_a_follow_up_naming_another_company_is_answered_from_that_company_only() -> None:
    passages = {1: "Industrial free cash flow was a use of 2.2 billion, one billion worse than prior year.",
                2: "Our industrial free cash flow was $694 million, a 21% increase year over year."}
    text = answer("What about Danaher? (context: What was GE industrial free cash flow in Q1 2020?)", passages,
                  companies={1: "General Electric", 2: "Danaher"})
    assert text == f"{passages[2]} [2]"


def test_a_comparison_says_which_side_the_documents_do_not_answer() -> None:
    passages = {1: "Our Pilgrim's Brand sales grew 52% in the quarter.",
                2: "We were quite pleased with the Halloween season overall."}
    text = answer("Compare Hershey and Pilgrim's Pride revenue growth in Q3 2020.", passages,
                  companies={1: "Pilgrim's Pride", 2: "Hershey"})
    assert text == "Pilgrim's Pride: Our Pilgrim's Brand sales grew 52% in the quarter. [1] " \
                   "Hershey: not found in the indexed documents."


def test_of_two_sentences_that_fit_alike_the_better_ranked_passage_answers() -> None:
    # Markers are retrieval ranks; the dict's own order (passage 4 first) must not decide a tie.
    passages = {4: "Adjusted EBITDA in the quarter was $48 million, up 12% from last year.",
                1: "Adjusted EBITDA in the quarter was $52 million, up 15% from last year."}
    assert answer("What was adjusted EBITDA in the quarter?", passages) == f"{passages[1]} [1]"


def test_with_another_metric_a_sentence_on_that_metric_alone_answers_its_part() -> None:
    passages = {1: "Net sales increased 35% to $294 million in the quarter.",
                2: "Gross margin expanded 670 basis points to a record 59.1%.",
                3: "Adjusted EBITDA margin reached 27.2%, up 810 basis points."}
    text = answer("What were YETI's net sales and adjusted EBITDA margin?", passages,
                  companies={1: "YETI", 2: "YETI", 3: "YETI"})
    assert f"{passages[1]} [1]" in text and f"{passages[3]} [3]" in text and "[2]" not in text, text


def test_a_follow_up_naming_a_metric_asks_about_that_metric_only() -> None:
    passages = {1: "EBITDA was negative TL 189 million compared to positive TL 71 million a year ago.",
                2: "EBITDA as a percentage of GMV declined 4.9 points while revenue grew 5.2% on GMV growth of 38%."}
    text = answer("And what was EBITDA in that quarter? (context: How much did Hepsiburada's revenue grow in Q2 "
                  "2021?)", passages, companies={1: "Hepsiburada", 2: "Hepsiburada"})
    assert text == f"{passages[1]} [1]"


def test_a_follow_up_pointing_back_with_that_keeps_the_earlier_topic() -> None:
    passages = {1: "Our quarter was punctuated by 29% sales growth, with 44% of sales from coolers.",
                2: "Our direct-to-consumer business grew 62% and reached 51% of total sales this period."}
    text = answer("What share of sales is that? (context: How much did YETI grow direct-to-consumer sales?)",
                  passages, companies={1: "YETI", 2: "YETI"})
    assert text == f"{passages[2]} [2]"


# One company's sentences: (why, company, question, the passages in retrieval order, the one that answers).
ONE_COMPANY_CASES = [
    ("the quarter of an update says when, not which period is asked",
     "Monro",
     "What sales does Monro now expect for fiscal 2020, after its third-quarter update?",
     ["We now anticipate fiscal 2020 sales to be in the range of $1.275 billion to $1.290 billion.",
      "Third quarter sales increased 3.2% to $327 million."], 1),
    ("'in its Q3 report' alone asks about Q3",
     "Monro",
     "What sales did Monro give in its third-quarter report?",
     ["We now anticipate fiscal 2020 sales to be in the range of $1.275 billion to $1.290 billion.",
      "Third quarter sales increased 3.2% to $327 million."], 2),
    ("a month that dates a quarter is no topic",
     "PointsBet",
     "What was PointsBet's handle in the December quarter?",
     ["Handle for the quarter was 598.9 million, up 72% quarter-on-quarter.",
      "As communicated in December, handle results were impacted by trading variances."], 1),
    ("the US is not us",
     "PointsBet",
     "What did PointsBet say about the US?",
     ["Customers keep telling us the in-play product is the best we have built.",
      "The U.S. remains our largest growth opportunity."], 2),
    ("what revenue was is an amount, not a change",
     "Ferrari",
     "What was Ferrari's revenue in 2021?",
     ["Revenues were up about 26% in the year.", "Revenues were €4,271,000,000 in the year."], 2),
    ("how it changed is a change",
     "Ferrari",
     "How much did Ferrari's revenue grow?",
     ["Revenues were up about 26% in the year.", "Revenues were €4,271,000,000 in the year."], 1),
    ("a margin is a rate, not an amount",
     "Ferrari",
     "What was Ferrari's adjusted EBITDA margin in 2021?",
     ["Adjusted EBITDA margin was 25.1%, up 80 basis points.",
      "Adjusted EBITDA margin expansion reflected sales of €12 million from personalization."], 1),
    ("a part of the metric asked about is not the metric",
     "Phoenix New Media",
     "What was Phoenix New Media's revenue in the third quarter?",
     ["Net advertising revenues were RMB 281.3 million.",
      "Total revenues were RMB 303 million, in line with our guidance."], 2),
    ("unless that part is asked about",
     "Phoenix New Media",
     "What were Phoenix New Media's advertising revenues?",
     ["Net advertising revenues were RMB 281.3 million.",
      "Total revenues were RMB 303 million, in line with our guidance."], 1),
    ("a period is no figure",
     "Spire",
     "What were Spire's net economic earnings per share in the second quarter?",
     ["Our second quarter net economic earnings per share was below last year and below FY20 levels.",
      "Net economic earnings per share were 2 cents in the quarter."], 2),
    ("a spelled amount is a figure ('a dividend of four pesewas' names nothing)",
     "MTN Ghana",
     "What total dividend per share did MTN Ghana declare for 2019?",
     ["The board is recommending a final dividend of four pesewas per share, bringing the total dividend for 2019 "
      "to six pesewas per share.",
      "This represents 73% of profit after tax and a 20% increase in dividend per share."], 1),
    ("what was something at the end of a quarter asks a figure",
     "Tecnoglass",
     "What was Tecnoglass's backlog at the end of Q3 2021?",
     ["Our single-family residential growth trajectory is not fully capturing our backlog.",
      "At 575.8 million, our third quarter backlog represents more than 1.2 times our revenue.",
      "Our leverage ratio decreased to 0.9 times net debt to adjusted EBITDA at quarter end."], 2),
    ("how much a company grew is its sales",
     "Lands' End",
     "How much did Lands' End grow in the third quarter?",
     ["We delivered 52% adjusted EBITDA growth in the third quarter.",
      "Third quarter total revenue grew approximately 6%, driven by our global e-commerce sales."], 2),
    ("sales fit better, but are not required",
     "Lands' End",
     "How much did Lands' End grow in the third quarter?",
     ["In the third quarter we grew 6% overall, with e-commerce up 20%."], 1),
    ("a long-term goal is no result, and a lone 'one' no figure",
     "SiTime",
     "What was SiTime's gross margin in the third quarter?",
     ["Our long-term goal for gross margins is getting them closer to 60% in two to three years.",
      "Newer products becoming a larger part of our sales drives higher gross margins, that's one.",
      "Non-GAAP gross margin during the quarter was 52.3%, up 530 basis points from Q2."], 3),
    ("an analyst's 'last question for me' is not quoted",
     "GCP",
     "Did GCP authorize a share repurchase?",
     ["And then, uh, last question for me is on the decision to authorize the $100 million of share repurchase.",
      "The board authorized a $100 million share repurchase program in the quarter."], 2),
    ("nor 'if I could just ask one more'",
     "GCP",
     "Did GCP authorize a share repurchase?",
     ["And then, um, if I could just ask one more on the $100 million share repurchase you authorized.",
      "The board authorized a $100 million share repurchase program in the quarter."], 2),
    ("'what about a segment?' asks the earlier question's metric",
     "Culp",
     "What about the mattress fabrics segment? (context: What were Culp's total net sales in the third quarter?)",
     ["Uh, let me start with the mattress fabrics segment.",
      "For the mattress fabrics segment, sales were 33.1 million, down 7.4% compared to last year."], 2),
    ("a leading 'and' does not hide that a metric is asked (a number answers it)",
     "YETI",
     "And what was YETI's gross margin?",
     ["Um, so a lot of that margin expansion is driven by gross margin expansion as we look to the future.",
      "Gross margin expanded 670 basis points to reach a record 59.1%."], 2),
    ("'next quarter' asks for an outlook, which says 'next' in its own words",
     "Texas Instruments",
     "What revenue do they guide for next quarter?",
     ["Revenue guidance for this quarter was $4.4 billion, and revenue came in at $4.6 billion.",
      "For the fourth quarter, we expect revenue in the range of $4.22 billion to $4.58 billion."], 2),
    ("a result 'as expected' is no outlook",
     "Texas Instruments",
     "What did they guide for next quarter?",
     ["Operating expenses in the quarter were $800 million, up 1% from a year ago and about as expected.",
      "For the fourth quarter, we expect revenue in the range of $4.22 billion to $4.58 billion."], 2),
    ("after a question about Q3, 'next quarter' is Q4",
     "Texas Instruments",
     "What did they guide for next quarter? (context: What revenue did Texas Instruments report for Q3 2021?)",
     ["We expect ongoing costs of about $75 million per quarter through 2022.",
      "For the fourth quarter, we expect revenue in the range of $4.22 billion to $4.58 billion."], 2),
    ("a sentence giving only the comparison base states no figure of the period asked",
     "Tecnoglass",
     "What was Tecnoglass's gross margin in the third quarter of 2021?",
     ["This compared to gross profit of 40.1 million in the prior year quarter, representing a gross margin of 38.8%.",
      "Our gross profit increased 28.7% to 51.6 million, representing a gross margin of 39.6%."], 2),
    ("a sentence naming the metric asked but giving only another metric's figures does not state it",
     "Tecnoglass",
     "What is Tecnoglass's full-year revenue outlook?",
     ["Based on the sales outlook and anticipated mix of revenues, we're raising our full year adjusted EBITDA outlook "
      "to a range of 140 to 145 million, representing 46% growth at the midpoint.",
      "We now expect full year 2021 revenues of 485 to 495 million, representing growth of 31% at the midpoint."], 2),
    ("'selling' days are no sales",
     "Monro",
     "What were Monro's sales in the third quarter of fiscal 2020?",
     ["The third quarter of fiscal 2020 had 89 selling days.",
      "Sales increased 6.2% year over year to $329.3 million."], 2),
    ("'received' is no receivable",
     "ZAGG",
     "What was ZAGG's receivable for duty refunds?",
     ["In August we received duty refund notices from customs covering 40 products imported from China.",
      "At quarter end we booked a receivable of approximately $5.4 million for duty refunds."], 2),
    ("'did X record' is the verb",
     "ZAGG",
     "What did ZAGG record for duty refunds?",
     ["We hold a record number of duty refund claims with customs this quarter, more than ever.",
      "We recorded a duty refund receivable of $5.4 million in the quarter."], 2),
    ("'cite' asks what was said, like 'mention'",
     "Dr. Reddy's",
     "What headwind did Dr. Reddy's cite for the quarter?",
     ["We cite our strong balance sheet and our cash position in every discussion with rating agencies.",
      "Price erosion in the US generics market was the main industry headwind in the quarter."], 2),
    ("gross profit 'as a percentage of net sales' states the gross margin",
     "ZAGG",
     "What was ZAGG's gross margin in the third quarter?",
     ["Gross margin headwinds came from higher freight expenses and from selling excess inventory at lower prices.",
      "Third quarter gross profit as a percentage of net sales decreased year-over-year to 33%."], 2),
    ("a bare follow-up asks for what the earlier question asked: a figure",
     "New Home",
     "And the backlog? (context: How many did The New Home Company in the third quarter of 2020?)",
     ["Our backlog remains healthy, and buyers keep signing contracts with us.",
      "Homes in backlog increased to 329, which represented a 59% year over year improvement."], 2),
    ("...and an outlook",
     "Embraer",
     "And free cash flow? (context: What does Embraer expect for 2021?)",
     ["Free cash flow in the second quarter was positive 45 million.",
      "Our free cash flow guidance for 2021 ranges from a use of 150 million to break-even."], 2),
    ("the conversation's company named earlier is no topic of a follow-up",
     "Ingersoll Rand",
     "What about liquidity? (context: What did Ingersoll Rand report for the first quarter of 2020?)",
     ["Ingersoll Rand is a premier industrial company, over our transformation.",
      "Liquidity also remains strong at $1.6 billion as we finished the quarter."], 2),
    ("a figure that opens a change in another metric, and a margin stated as a share of sales",
     "ZAGG",
     "What was ZAGG's gross margin in the third quarter?",
     ["Despite a 32 million drop in revenue and some gross margin headwinds from higher freight, we delivered "
      "adjusted EBITDA of $15 million.",
      "Q3 gross profit as a percentage of net sales decreased year-over-year to 33%."], 2),
    ("a cost's figures answer no question on revenue",
     "Cumulus Media",
     "How much did Cumulus Media's revenue decline in the third quarter of 2020?",
     ["Expenses declined by 42 million, or 19%, driven by cost reductions related to the revenue declines.",
      "Total revenue was 196.4 million, down 29.4% from the prior year."], 2),
    ("the reported figure before an organic one, and a period between two words leaves them a phrase",
     "FEMSA",
     "How much did FEMSA's revenue decline in the second quarter of 2020?",
     ["On an organic basis, total revenues decreased 14.30% and income from operations decreased by 40.4%.",
      "Total revenue during the second quarter decreased 10.7%, while income from operations decreased 37.5%."], 2),
    ("the first six months are the first half, no quarter",
     "GCP",
     "What were GCP's sales in the second quarter of 2020?",
     ["GCP's net sales for the first six months totaled 419.4 million, decreasing 14% compared with the prior year.",
      "GCP sales of 200 million were 23.70% lower than prior year."], 2),
    ("...also in digits",
     "GCP",
     "What were GCP's sales in the second quarter of 2020?",
     ["GCP's net sales for the first 6 months totaled 419.4 million, decreasing 14% compared with the prior year.",
      "GCP sales of 200 million were 23.70% lower than prior year."], 2),
    ("'how did X change' asks by how much",
     "GE",
     "How did GE's orders change in the first quarter of 2020?",
     ["At Power we are monitoring new unit orders and services as outages change.",
      "First quarter orders were down 3% organically."], 2),
    ("what a figure will be is an outlook, no result",
     "RWE",
     "What was RWE's adjusted EBITDA in its core business in the first half of 2020?",
     ["Adjusted EBITDA of the core business will come out between 2.15 and 2.45 billion euros.",
      "In our core business adjusted EBITDA increased by 9% to 1.5 billion euros."], 2),
    ("'post' asks for a figure, it is no topic",
     "ZAGG",
     "What revenue did ZAGG post for the third quarter of 2020?",
     ["We posted a video of the product launch on our website.",
      "Revenue recognition follows our policy for each segment.",
      "Q3 revenue came in at $115 million compared to 137 million in the year-ago period."], 3),
    ("'why' is answered by a sentence giving a reason",
     "Tecnoglass",
     "What was behind the gross margin improvement at Tecnoglass in the third quarter of 2021?",
     ["Our gross profit increased 28.7% to 51.6 million, representing a gross margin of 39.6%.",
      "Our 80 basis point improvement in margin was mainly attributable to greater operating efficiencies."], 2),
    ("a segment named asks for the earlier figure of that segment, which need not say 'segment'",
     "GCP",
     "And the SBM segment? (context: What were GCP's sales in the second quarter of 2020?)",
     ["SBM segment operating income was 11 million with operating margins at 13.8%.",
      "SBM sales totaled 80.5 million during the second quarter, a 28% decline."], 2),
    ("a follow-up that asks its own question keeps its own form",
     "Acme",
     "For the fourth quarter, what revenue did they report? (context: What revenue does Acme expect for 2021?)",
     ["For the first quarter of 2021, we expect revenue of $1.4 billion.",
      "Fourth quarter revenue was $1.2 billion."], 2),
    ("...while 'what about' asks the earlier question's",
     "Embraer",
     "What about free cash flow? (context: What does Embraer expect for 2021?)",
     ["Free cash flow in the second quarter was positive 45 million.",
      "Our free cash flow guidance for 2021 ranges from a use of 150 million to break-even."], 2),
    ("and a question for the reasons asks no figure",
     "ADTRAN",
     "And the main drivers? (context: What was ADTRAN's revenue growth in Q3 2020?)",
     ["Revenue for the quarter was $120 million, up 12% year over year.",
      "Revenue growth was driven by demand from tier two operators for fiber access."], 2),
    ("a date is no figure a sentence says a future figure will be",
     "Acme",
     "What guidance did Acme give for 2021?",
     ["Our annual shareholder meeting will be held on May 12, 2021 in Boston.",
      "We expect revenue growth in 2021 in the mid single digits."], 2),
    ("a noun is no change asked about",
     "Sysco",
     "How did Sysco respond to the drop in restaurant demand in Q2 2020?",
     ["Sales fell as restaurant demand dropped 44% in the quarter.",
      "We responded to the drop in restaurant demand by cutting costs and redeploying our drivers."], 2),
    ("a reported figure with an organic one besides is the reported figure",
     "Acme",
     "What was Acme's revenue in Q2 2021?",
     ["On an organic basis, revenue was $4.9 billion.",
      "Revenue was $5.2 billion, up 8%, or 6% organically."], 2),
    ("the trailing twelve months are no quarter",
     "YETI",
     "What were YETI's net sales in the third quarter?",
     ["YETI crossed $1 billion in net sales for the trailing 12 months.",
      "Net sales increased 29% to $294.6 million compared to $229.1 million."], 2),
]


@pytest.mark.parametrize(("why", "company", "question", "texts", "answering"), ONE_COMPANY_CASES,
                         ids=[case[0] for case in ONE_COMPANY_CASES])
def test_the_sentence_that_answers_one_company_question(why: str, company: str, question: str, texts: list[str],
                                                        answering: int) -> None:
    passages = dict(enumerate(texts, 1))
    text = answer(question, passages, companies=dict.fromkeys(passages, company))
    assert text == f"{passages[answering]} [{answering}]", why


def test_a_fiscal_year_title_covers_the_calendar_year_it_starts_in() -> None:
    """PointsBet's "Q2 FY2022" is the December 2021 quarter: its sentences are not ruled out for 2021."""
    passages = {1: "Handle for the quarter was 598.9 million, up 72% quarter-on-quarter.",
                2: "Handle in calendar 2021 was 310 million, hurt by trading variances."}
    title = "PointsBet Q2 FY2022 earnings call"
    text = answer("What was PointsBet's handle in 2021?", passages, companies={1: "PointsBet", 2: "PointsBet"},
                  titles={1: title, 2: title})
    assert text.startswith(f"{passages[1]} [1]")


def test_recorded_is_no_record() -> None:
    passages = {1: "In the marketplace, revenues are recorded on a net basis, mainly marketplace commissions.",
                2: "Total revenues increased 26% year over year to a record 130.4 million."}
    text = answer("Which companies reported record revenue?", passages,
                  companies={1: "Hepsiburada", 2: "Tecnoglass"})
    assert text == f"Tecnoglass: {passages[2]} [2]"


_HALF_COVERED = '''
import rag.providers.extractive as ex
words = "the team reported steady progress across every region this year"
passages = {1: f"The zebra and the quokka both made {words}.", 2: f"The lemur and the okapi both made {words}."}
passages |= {n: f"Sentence {n} on the quokka and okapi notes {words}." for n in range(3, 8)}
passages |= {n: f"Sentence {n} on something else entirely notes {words}." for n in range(8, 13)}
print(ex.answer("How are zebra, quokka, lemur and okapi doing?", passages, companies=dict.fromkeys(passages, "A")))
'''


def test_an_answer_does_not_depend_on_the_hash_seed() -> None:
    """A sentence covering exactly half the question's weight is at MIN_COVERAGE. Summed in set order, that half read
    0.49999999999999994 under some hash seeds (5 and 12 here), so the same question answered in one process and
    abstained in another (it happened to an earnings dev question in about one run in seven)."""
    answers = {subprocess.run([sys.executable, "-c", _HALF_COVERED], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("0", "5", "12")}
    assert len(answers) == 1 and "NOT_FOUND" not in answers.pop()


def test_a_reason_is_read_in_the_sentences_after_the_one_naming_the_topic() -> None:
    """"Why"/"what drove": speakers name the topic, then explain it in words the question does not use."""
    ge = {1: "We estimate the first quarter industrial operating profit impact from COVID-19 at roughly 700 million. "
             "Drivers included lower aftermarket sales, project delays and supply chain constraints. "
             "Turning now to cash."}
    assert answer("What drove the COVID-19 hit to GE's industrial operating profit?", ge, companies={1: "GE"}) == (
        "We estimate the first quarter industrial operating profit impact from COVID-19 at roughly 700 million. [1] "
        "Drivers included lower aftermarket sales, project delays and supply chain constraints. [1]")
    # A sentence announcing the reasons brings the first of them too.
    dentsply = {1: "Consumables operating margin was -9.4% as compared to 27% in the second quarter of 2019. "
                   "There are two primary reasons for the decline in consumables margins. "
                   "The first reason is that the consumables segment experienced a steeper fall-off in sales. "
                   "The second is plant under-absorption."}
    assert answer("Why did Dentsply's consumables operating margin fall?", dentsply, companies={1: "Dentsply"}) \
        .endswith("The first reason is that the consumables segment experienced a steeper fall-off in sales. [1]")
    # A speaker restating what analysts ask answers in the next sentence, whatever the question's form.
    cop = {1: "By the way, we've been asked about how we view risk in the event of a change in leadership in "
              "Washington. Our view is that while it might create some headwinds for the industry, our global "
              "diversification keeps us competitive."}
    assert answer("What did ConocoPhillips say about the risk of a change of leadership in Washington?", cop,
                  companies={1: "ConocoPhillips"}).endswith("keeps us competitive. [1]")
    # A sentence that gives its reason stands alone.
    pilgrims = {1: "Prepared foods revenue declined 23% because schools remained closed. "
                    "Retail demand strengthened through the quarter in every channel we serve."}
    assert answer("Why did Pilgrim's prepared foods revenue decline?", pilgrims, companies={1: "Pilgrim's"}) == (
        "Prepared foods revenue declined 23% because schools remained closed. [1]")


def test_each_side_of_a_comparison_gets_its_best_answering_sentence() -> None:
    """A side whose sentences miss a word of the other side's wording ("Total revenue..." / "Revenues...") still
    answers with its best sentence that can, rather than "not found"; "more" asks nothing of a sentence."""
    passages = {1: "Total revenue for the second quarter of 2020 was 2.9 million euros, compared with 4 million euros.",
                2: "Revenues for the second quarter of 2020 were $2.9 million compared to $0.9 million a year ago."}
    companies = {1: "Affimed", 2: "AcelRx Pharmaceuticals"}
    for question in ("Compare Affimed's and AcelRx's total revenue in Q2 2020.",
                     "Which had more total revenue in Q2 2020, Affimed or AcelRx?"):
        assert answer(question, passages, companies=companies) == (
            f"Affimed: {passages[1]} [1] AcelRx Pharmaceuticals: {passages[2]} [2]"), question


@pytest.mark.parametrize(("question", "texts", "companies", "expected"), [
    # "Higher" would ask for growth, and a sentence on a margin's increase would beat the one stating it.
    ("Which had the higher gross margin in the third quarter of 2020, The New Home Company or Lands' End?",
     ["Our gross margin for the 2020 third quarter was 14.2% versus 9.5% in the prior year period.",
      "The 320 basis point improvement in gross margin reflects higher gross margins on homes closed.",
      "Gross margin in the third quarter was 45.4%."],
     ["The New Home Company", "The New Home Company", "Lands' End"], [1, 3]),
    # ...and so when the comparison is asked again.
    ("Which was higher? (context: Compare YETI's and ZAGG's gross margin in the third quarter of 2020.)",
     ["Gross margin was 57.9% in the quarter.", "Our gross margin rose on higher prices.",
      "Gross margin was 33% of net sales."],
     ["YETI", "YETI", "ZAGG"], [1, 3]),
    # A hyphenated name keeps its comparative.
    ("Which had the larger less-than-truckload revenue in Q3, XPO or Old Dominion?",
     ["Truckload revenue declined 5% to $300 million.", "Less-than-truckload revenue was $1.2 billion.",
      "LTL revenue grew 4% to $1.1 billion, and less-than-truckload tonnage rose."],
     ["XPO", "XPO", "Old Dominion"], [2, 3]),
    # "Compare the net income of..." asks what each side earned, as "What was..." does: a share of net income is a
    # rate, not the amount.
    ("Compare the first-quarter 2021 net income of KB Financial Group and Itaú CorpBanca.",
     ["Non-banking businesses, as of Q1, account for 48.6% of the Group's net income.",
      "KBFG in Q1 2021 reported a net profit of 1,270.1 billion won, a record quarter.",
      "Our consolidated net income was 95.1 billion Chilean pesos."],
     ["KB Financial Group", "KB Financial Group", "Itaú CorpBanca"], [2, 3]),
    # A comparison asks for figures, even when it names no metric the answerer knows.
    ("Compare leverage: Constellium at end of Q2 2020 vs Ingersoll Rand at end of Q1 2020.",
     ["At the end of the second quarter, our leverage was 4.4 times and our net debt was 2.2 billion.",
      "First, we are quick to leverage demand generation techniques widely used in the consumer market.",
      "From a leverage perspective, we finished at 2.6 times."],
     ["Constellium", "Ingersoll Rand", "Ingersoll Rand"], [1, 3]),
    # "Who...?" naming the companies compares them: each side answers, though one side's words are its own.
    ("Who grew online/direct faster - YETI's DTC channel in Q3 2020 or Lands' End's global e-commerce in fiscal Q3 "
     "2020?",
     ["Looking at our channels, direct-to-consumer net sales grew 62% to $150.4 million.",
      "Momentum continued in our global e-commerce business, which increased 20% with strong US results."],
     ["YETI", "Lands' End"], [1, 2]),
])
def test_each_side_of_a_comparison_is_its_own_figure(question: str, texts: list[str], companies: list[str],
                                                      expected: list[int]) -> None:
    passages = dict(enumerate(texts, 1))
    text = answer(question, passages, companies=dict(enumerate(companies, 1)))
    assert text == " ".join(f"{companies[n - 1]}: {passages[n]} [{n}]" for n in expected)


@pytest.mark.parametrize(("question", "texts", "expected"), [
    # "Which had the higher...?" asks each side for a figure, as "What was...?" does.
    ("Which had the higher gross margin: YETI in the third quarter of 2020 or Lands' End in the third quarter of "
     "fiscal 2020?",
     ["So a lot of that margin expansion is driven by gross margin expansion as we look to the future.",
      "Gross margin expanded 670 basis points to reach a record 59.10%.",
      "Gross margin in the third quarter increased approximately 10 basis points to 45.4%."], [2, 3]),
    # A cash position is the cash held, which a sentence may state without saying "position".
    ("How did the cash positions of YETI and Lands' End compare at the end of the second quarter of 2020?",
     ["We remain prudent in our cash spending, and the positive impact of the launch continues.",
      "We ended the second quarter with $43.7 million in cash and short term investments.",
      "As of June 30, 2020, cash and marketable securities were $66.2 million."], [2, 3]),
    # A comparison asking why is answered by reasons, not figures.
    ("Why did gross margin fall at YETI and Lands' End in the third quarter?",
     ["Gross margin in the third quarter fell on higher freight costs and heavier promotions.",
      "Gross margin in the third quarter was 57.1%, compared to 58.3% last year.",
      "Gross margin in the third quarter declined because of clearance activity and a shift toward wholesale."],
     [1, 3]),
])
def test_each_side_of_a_comparison_states_its_figure(question: str, texts: list[str], expected: list[int]) -> None:
    # As in a call, most sentences read speak of neither the metric nor the period.
    others = ["Our wholesale partners reordered ahead of the holiday season.", "Drinkware led the growth of the "
              "brand.", "Outdoor gear demand stayed broad across channels.", "Our stores reopened through the summer.",
              "Customer file growth continued with new buyers online.", "We added new colors to the range in June."]
    passages = dict(enumerate(texts + others, 1))
    companies = {n: "Lands' End" if n == 3 or n > len(texts) + 3 else "YETI" for n in passages}
    text = answer(question, passages, companies=companies)
    assert text == " ".join(f"{companies[n]}: {passages[n]} [{n}]" for n in expected)


def test_what_a_company_said_about_a_topic_is_told_in_the_sentences_that_fit_alike() -> None:
    passages = {1: "The traditional orthodontic business is a component of the technology and equipment segment.",
                2: "As a result, we are exiting the traditional orthodontic business, which includes brackets.",
                3: "Clear aligners remain an attractive opportunity for us."}
    companies = dict.fromkeys(passages, "Dentsply Sirona")
    said = answer("What did Dentsply Sirona say about its traditional orthodontics business?", passages,
                  companies=companies)
    assert said == f"{passages[1]} [1] {passages[2]} [2]"
    # What was said about a figure is the sentence that states it.
    assert answer("What did Dentsply Sirona say about its traditional orthodontics net sales?",
                  {1: "The traditional orthodontics business had net sales of approximately 132 million.",
                   2: "The traditional orthodontics business net sales were 35 million in the quarter."},
                  companies=dict.fromkeys((1, 2), "Dentsply Sirona")).count("[") == 1


def test_a_metric_between_commas_is_asked_not_a_description() -> None:
    passages = {1: "Adjusted EBITDA was $95 million in the third quarter.",
                2: "Gross margin in the third quarter expanded 670 basis points to 59.1%.",
                3: "Net income in the third quarter was $60 million."}
    text = answer("What were YETI's EBITDA, the gross margin, and net income in the third quarter?", passages,
                  companies=dict.fromkeys(passages, "YETI"))
    assert "59.1%" in text, text


def test_a_period_in_a_description_is_still_asked() -> None:
    passages = {1: "For the second quarter of 2019, FPL reported a net income of $663 million.",
                2: "For the second quarter of 2020, FPL reported a net income of $749 million."}
    text = answer("What second-quarter net income did FPL, NextEra Energy's Florida utility in 2020, report?",
                  passages, companies=dict.fromkeys(passages, "NextEra Energy"))
    assert text == f"{passages[2]} [2]"


def test_a_date_in_the_question_is_no_topic() -> None:
    passages = {1: "On June 30 we held our annual meeting in San Carlos, with strong attendance from investors.",
                2: "We ended the second quarter with $43.7 million in cash and short term investments."}
    text = answer("How much cash did AcelRx hold at June 30, 2020?", passages,
                  companies=dict.fromkeys(passages, "AcelRx Pharmaceuticals"))
    assert text == f"{passages[2]} [2]"


def test_the_trailing_twelve_months_are_no_quarter_even_in_that_quarters_call() -> None:
    """A sentence naming no quarter is dated by its call's title; one on the trailing twelve months is not."""
    passages = {1: "YETI crossed $1 billion in net sales for the trailing 12 months.",
                2: "Net sales increased 29% to $294.6 million compared to $229.1 million."}
    title = "YETI Q3 2020 earnings call"
    text = answer("What were YETI's net sales in the third quarter?", passages,
                  companies=dict.fromkeys(passages, "YETI"), titles=dict.fromkeys(passages, title))
    assert text == f"{passages[2]} [2]"


def test_how_many_asks_for_the_count_whatever_the_verb_unless_the_verb_says_which_way() -> None:
    passages = {1: "HepsiJet also began rolling out two main cargo handling services in the second quarter.",
                2: "Total number of orders in the second quarter were 13.1 million, the highest to date."}
    companies = dict.fromkeys(passages, "Hepsiburada")
    assert answer("How many orders did Hepsiburada handle in Q2 2021?", passages,
                  companies=companies) == f"{passages[2]} [2]"
    # Closing stores is not what the number of stores says.
    stores = {1: "We ended the quarter with a total of 1,263 stores across our footprint.",
              2: "During the quarter we closed 12 underperforming stores and opened four."}
    assert answer("How many stores did Monro close in the quarter?", stores,
                  companies=dict.fromkeys(stores, "Monro")) == f"{stores[2]} [2]"
    staff = {1: "The total number of employees at the end of the quarter was approximately 12,000 across all regions.",
             2: "In April we furloughed about 1,500 employees as stores temporarily closed."}
    assert answer("How many employees did Acme furlough?", staff, companies=dict.fromkeys(staff, "Acme")) == \
        f"{staff[2]} [2]"


@pytest.mark.parametrize("question", [
    "Quick one: GCP's gross margin in Q2 2020 and the basis-point improvement?",
    "Remind me of GCP's gross margin improvement in Q2 2020.",
    "Tell me about GCP's gross margin improvement in Q2 2020.",
    "I'd like GCP's gross margin improvement for Q2 2020.",
    "Contrast GCP's gross margin improvement in Q2 2020 with what it already reported.",
])
def test_how_a_chat_opens_a_request_is_no_topic(question: str) -> None:
    passages = {1: "GCP's gross margin improved 130 basis points in the second quarter to 39.1%.",
                2: "We remain focused on our long-term goals and on serving our customers."}
    assert answer(question, passages, companies=dict.fromkeys(passages, "GCP Applied Technologies")) == \
        f"{passages[1]} [1]"


@pytest.mark.parametrize("question", ["Quick one: Hepsiburada's GMV in Q2 2021?",
                                      "Remind me of Hepsiburada's GMV in Q2 2021.",
                                      "I'd like Hepsiburada's GMV for Q2 2021."])
def test_a_chat_opening_does_not_outweigh_a_one_word_topic(question: str) -> None:
    passages = {1: "Our GMV grew by 38.4% in Q2 21, reaching 5.9 billion Turkish lira.",
                2: "We remain focused on our long-term goals and on serving our customers."}
    assert answer(question, passages, companies=dict.fromkeys(passages, "Hepsiburada")) == f"{passages[1]} [1]"


def test_where_a_figure_landed_asks_for_the_figure() -> None:
    passages = {1: "2021 Q1 Group and bank NIM posted 1.82% and 1.56%, respectively.",
                2: "We landed several new corporate mandates in the quarter, and loan growth continued."}
    text = answer("Where did group NIM land? (context: What net profit did KB Financial Group report for Q1 2021?)",
                  passages, companies=dict.fromkeys(passages, "KB Financial Group"))
    assert text == f"{passages[1]} [1]"


def test_the_kind_of_company_compared_is_no_topic_and_an_accent_does_not_hide_a_name() -> None:
    passages = {1: "As of June 30, 2020, cash, cash equivalents and marketable securities were $66.2 million.",
                2: "Cash and cash equivalents totaled EUR 92.6 million as of June 30, 2020."}
    companies = {1: "Aldeyra Therapeutics", 2: "Affimed"}
    text = answer("Which biotech had more cash at June 30, 2020 - Aldeyra or Affimed? Give both figures.", passages,
                  companies=companies)
    assert "66.2 million" in text and "92.6 million" in text, text
    risk = {1: "Cost of risk for the quarter stood at 3.1%, a 44 basis point year on year increase.",
            2: "Cost of risk in Chile reached 0.5% in the quarter, the lowest in years."}
    text = answer("Which bank ran the richer cost of risk: Santander México in Q2 2020 or Itaú CorpBanca in Q1 2021?",
                  risk, companies={1: "Santander Mexico", 2: "Itau CorpBanca"})
    assert "3.1%" in text and "0.5%" in text, text


def test_a_range_asked_is_stated_by_two_figures() -> None:
    passages = {1: "We are forecasting total revenues to be between RMB 332.4 million and RMB 362.4 million.",
                2: "Net advertising revenues decreased by 17% year over year in the quarter.",
                3: "Paid services revenues were RMB 21.7 million, down from RMB 26.8 million.",
                4: "Revenues from our mobile apps grew as a share of advertising revenues.",
                5: "Our revenue mix continued to shift toward paid services this quarter.",
                6: "We forecast continued pressure on advertising budgets."}
    text = answer("What revenue range did Phoenix New Media guide for Q4 2020?", passages,
                  companies=dict.fromkeys(passages, "Phoenix New Media"))
    assert text == f"{passages[1]} [1]"


@pytest.mark.parametrize("question", ["After Q3 2020, what EPS guidance did Eversource give?",
                                      "What EPS guidance Eversource gave on its Q3 2020 call?"])
def test_how_a_question_is_put_is_no_topic(question: str) -> None:
    eps = {1: "We now expect 2020 earnings per share in the range of $3.60 to $3.70.",
           2: "Earnings per share were $1.04 in the third quarter of 2020.",
           3: "Earnings per share of the transmission segment were $0.30 in the quarter.",
           4: "We expect storm costs to be recovered through rates."}
    assert answer(question, eps, companies=dict.fromkeys(eps, "Eversource Energy")) == f"{eps[1]} [1]"


def test_what_a_company_told_investors_about_a_topic_is_what_it_said() -> None:
    passages = {1: "Our dividend will rise 10% next year, as the board decided in October.",
                2: "We keep investors informed through regular investor meetings and calls.",
                3: "The dividend was paid on October 1 to shareholders of record."}
    text = answer("What did Spire tell investors about its dividend?", passages,
                  companies=dict.fromkeys(passages, "Spire"))
    assert text.startswith(f"{passages[1]} [1]"), text


def test_analyst_shorthand_meets_what_calls_say() -> None:
    passages = {1: "Handle for the quarter was 598.9 million, up 72% quarter-on-quarter.",
                2: "Our U.S. business continued to invest in technology and marketing.",
                3: "Handle in New Jersey led our states this quarter.",
                4: "Our handle mix shifted toward in-play betting.",
                5: "Our customer base grew in every state, and handle growth was broad."}
    text = answer("What was PointsBet's U.S. handle in Q2 FY2022, with the sequential growth rates?", passages,
                  companies=dict.fromkeys(passages, "PointsBet"))
    assert text == f"{passages[1]} [1]"
    cases = {1: "Only 11 of our 3,500 employees have tested positive for the coronavirus, and all but one are back.",
             2: "Our own employee safety programs have been in place for years.",
             3: "Employees have adapted well to working from home."}
    assert answer("What did Spire say about COVID-19 among its own employees?", cases,
                  companies=dict.fromkeys(cases, "Spire")).startswith(f"{cases[1]} [1]")


def test_a_share_of_what_is_asked_is_not_what_is_asked() -> None:
    passages = {1: "During March, Argos ONE accounted for 70%, 41% and 23% of cement dispatches of Colombia, the U.S. "
                   "and Panama respectively.",
                2: "Cement dispatches reached 3.6 million tons during the first quarter of 2020, decreasing 6.1%."}
    text = answer("What were Cementos Argos' cement dispatches in the first quarter of 2020?", passages,
                  companies=dict.fromkeys(passages, "Cementos Argos"))
    assert text == f"{passages[2]} [2]"


def test_in_line_with_is_no_topic() -> None:
    passages = {1: "Sales of 200 million were 23.7% lower than last year, within the decline we expected.",
                2: "Sales of our waterproofing product line grew in Asia.",
                3: "Sales in North America fell on restrictions.",
                4: "Sales to residential builders held up best."}
    text = answer("Were GCP's second-quarter sales in line with what it expected?", passages,
                  companies=dict.fromkeys(passages, "GCP Applied Technologies"))
    assert text.startswith(f"{passages[1]} [1]"), text


def test_a_calls_outlook_answers_for_the_period_after_the_calls_own() -> None:
    passages = {1: "For advertising revenues, we are forecasting between RMB 309.6 million and RMB 334.6 million.",
                2: "We are forecasting revenues to be between RMB 332.4 million and RMB 362.4 million."}
    titles = dict.fromkeys(passages, "Phoenix New Media Q3 2020 earnings call")
    companies = dict.fromkeys(passages, "Phoenix New Media")
    # Guidance has no parts: the advertising revenues are one part of the revenue guided.
    assert answer("What revenue did Phoenix New Media guide for Q4 2020?", passages, companies=companies,
                  titles=titles) == f"{passages[2]} [2]"
    # Undated, the outlook is not the Q3 call's own quarter: it answers for Q4 at full weight.
    assert answer("What total revenue outlook did Phoenix New Media give for Q4 2020?", {2: passages[2]},
                  companies=companies, titles=titles) == f"{passages[2]} [2]"


def test_guidance_raised_in_a_calls_quarter_is_that_quarters_not_the_next() -> None:
    passages = {1: "At the end of August we increased our revenue guidance for the quarter by more than 10%.",
                2: "We expect fourth quarter revenue will be up 10 to 15% sequentially."}
    assert answer("SiTime Q4 2020 revenue outlook?", passages, companies=dict.fromkeys(passages, "SiTime"),
                  titles=dict.fromkeys(passages, "SiTime Q3 2020 earnings call")) == f"{passages[2]} [2]"


def test_the_main_reason_asks_why_and_no_figure() -> None:
    passages = {1: "First quarter sales at our automotive segment decreased $18.6 million or 24%.",
                2: "Sales fell mainly because of lower vehicle production volumes due to the chip shortage."}
    text = answer("What was the main reason Exco Technologies' sales fell in Q1 fiscal 2022?", passages,
                  companies=dict.fromkeys(passages, "Exco Technologies"))
    assert text.startswith(f"{passages[2]} [2]"), text


def test_cash_received_is_no_cash_held() -> None:
    passages = {1: "Subsequent to June 30, 2020, $25.2 million in cash was received from at-the-market sales.",
                2: "As of June 30, 2020, cash, cash equivalents and marketable securities were $66.2 million."}
    assert answer("How much cash did Aldeyra have at the end of June 2020?", passages,
                  companies=dict.fromkeys(passages, "Aldeyra Therapeutics")) == f"{passages[2]} [2]"


def test_gmv_asked_tersely_is_an_amount() -> None:
    passages = {1: "While our GMV grew by 38.4% in Q2 21, our revenue growth was 5.2%.",
                2: "In the second quarter, our GMV grew by 38% to 5.9 billion Turkish lira."}
    assert answer("Hepsiburada GMV Q2 2021", passages,
                  companies=dict.fromkeys(passages, "Hepsiburada")) == f"{passages[2]} [2]"


@pytest.mark.parametrize(("question", "passages", "expected", "company"), [
    pytest.param("Why isn't Spire giving fiscal 2020 EPS guidance?",
                 ["Given the uncertainty around our Missouri rate case, we'll refrain from EPS guidance for fiscal "
                  "2020.", "Our weather normalization mechanisms are working as designed.",
                  "EPS guidance is something we revisit with the board every year.",
                  "Our guidance practice follows our peers.",
                  "Our EPS and guidance disclosures follow the rules."], 1, "Spire", id="a-negation"),
    pytest.param("Political ad revenue at Nexstar in Q2 2020?",
                 ["Second quarter political advertising revenue was 21.6 million.",
                  "Political action committees were active in the quarter.",
                  "Revenue from distribution grew 12% in the quarter."], 1, "Nexstar Media Group",
                 id="ad-is-advertising"),
    pytest.param("Trip.com hotel booking revenue in Q3 2021?",
                 ["Accommodation reservation revenue for the third quarter of 2021 was RMB 2.2 billion.",
                  "Transportation ticketing revenue for the third quarter of 2021 was RMB 1.8 billion."], 1,
                 "Trip.com", id="a-hotel-booking-is-an-accommodation-reservation"),
    pytest.param("KB Financial Group net profit in 1Q21?",
                 ["KBFG in Q1 2021 reported a net profit of one trillion 270.1 billion won.",
                  "In Q4 2020, net profit was 586.6 billion won."], 1, "KB Financial Group", id="1q21-is-q1-2021"),
])
def test_how_analysts_write_meets_how_calls_speak(question: str, passages: list[str], expected: int,
                                                  company: str) -> None:
    numbered = dict(enumerate(passages, 1))
    assert answer(question, numbered, companies=dict.fromkeys(numbered, company)).startswith(
        f"{numbered[expected]} [{expected}]")


def test_the_names_before_a_lists_category_describe_it() -> None:
    passages = {1: "Our NPL ratio stood at 1.2%, stable versus the prior quarter.",
                2: "Non-performing loans decreased 8% in the quarter thanks to collections.",
                3: "Our American depositary shares trade on the New York Stock Exchange."}
    companies = {1: "Banco Santander Mexico", 2: "Itau CorpBanca", 3: "Itau CorpBanca"}
    text = answer("Which Latin American banks discussed their non-performing loans?", passages, companies=companies)
    assert "[1]" in text and "[2]" in text and "[3]" not in text, text


def test_a_result_in_line_with_plan_is_a_result() -> None:
    passages = {1: "While our GMV grew by 38.4% in Q2 21, our revenue growth was 5.2%.",
                2: "In the second quarter, our GMV grew by 38% to 5.9 billion Turkish lira in line with our plan.",
                3: "Marketplace brought its contribution to GMV to 69% in the second quarter."}
    assert answer("Hepsiburada GMV Q2 2021", passages,
                  companies=dict.fromkeys(passages, "Hepsiburada")) == f"{passages[2]} [2]"


def test_an_operators_welcome_and_a_direction_to_a_slide_answer_nothing() -> None:
    passages = {1: "Good day everyone, and welcome to Banco Santander México's second quarter 2020 earnings conference "
                   "call.",
                2: "Net income decreased 25% year on year to 4.2 billion pesos."}
    companies = dict.fromkeys(passages, "Banco Santander Mexico")
    assert answer("What did Banco Santander México earn in Q2 2020?", passages, companies=companies) == \
        f"{passages[2]} [2]"
    assert answer("Welcome to Banco Santander México's call: what did the bank earn in Q2 2020?",
                  {1: "Welcome everyone to our second quarter 2020 earnings call."},
                  companies={1: "Banco Santander Mexico"}) == NOT_FOUND
    slides = {1: "Please turn to slide eleven for an overview of recent loan performance.",
              2: "Loan performance held up: our NPL ratio rose 28 basis points to 2.5%, mainly in the SME segment."}
    assert answer("What did Banco Santander México say about loan performance?", slides,
                  companies=dict.fromkeys(slides, "Banco Santander Mexico")).startswith(f"{slides[2]} [2]")


def test_a_change_and_where_it_ended_is_no_range() -> None:
    passages = {1: "For the fourth quarter, we expect EPS of approximately $1.10, reflecting normal seasonality.",
                2: "EPS grew 12% to $1.05 in the third quarter, and we expect the fourth quarter to benefit."}
    assert answer("What EPS range did Acme guide for the fourth quarter?", passages,
                  companies=dict.fromkeys(passages, "Acme")) != f"{passages[2]} [2]"


def test_an_undated_forecast_is_for_later_in_its_calls_year_only() -> None:
    passages = {1: "We expect revenue to be in the range of $480 million to $495 million.",
                2: "We expect fourth quarter revenue of $600 million to $620 million."}
    titles = {1: "Acme Q3 2020 earnings call", 2: "Acme Q3 2021 earnings call"}
    assert answer("What revenue did Acme guide for Q4 2021?", passages, companies=dict.fromkeys(passages, "Acme"),
                  titles=titles) == f"{passages[2]} [2]"


def test_which_of_a_topic_is_larger_keeps_the_topic() -> None:
    passages = {1: "Acme's backlog was $2.1 billion at quarter end.", 2: "Acme's revenue was $500 million.",
                3: "Beta ended the quarter with a backlog of $1.7 billion.", 4: "Beta's revenue was $400 million."}
    text = answer("Which backlog was larger, Acme's or Beta's?", passages,
                  companies={1: "Acme", 2: "Acme", 3: "Beta", 4: "Beta"})
    assert "$2.1 billion" in text and "$1.7 billion" in text and "revenue" not in text, text


@pytest.mark.parametrize(("question", "passages", "expected"), [
    pytest.param("What was Acme's net income in the third quarter?",
                 ["The bottom line is that the third quarter was a record, with revenue up 25% to $300 million.",
                  "Net income attributable to common shareholders improved significantly compared with last year."], 2,
                 id="the-bottom-line-is-an-idiom"),
    pytest.param("What was Acme's revenue in the third quarter?",
                 ["Revenue from operations for the quarter stood at Rs 1,250 crore, up 14% year on year.",
                  "Export revenue for the quarter was Rs 300 crore, driven by strong demand in Europe."], 1,
                 id="operations-are-no-cost"),
    pytest.param("What was Acme's revenue in the third quarter?",
                 ["Services revenue for the quarter was $300 million, up 8%.",
                  "Revenue from continuing operations for the quarter was $1,250 million, up 14%."], 2,
                 id="revenue-from-operations-is-the-whole"),
    pytest.param("How much of revenue is recurring?",
                 ["Recurring revenue was 85% of total revenue.", "Recurring revenue grew 20% in the quarter."], 1,
                 id="how-much-of-asks-a-share"),
    pytest.param("Where did Acme settle the patent lawsuit?",
                 ["The patent lawsuit was filed in the Eastern District of Texas in 2019.",
                  "We settled the patent lawsuit in Delaware for $20 million in September."], 2,
                 id="where-asks-a-place"),
    pytest.param("What was MTN's headline earnings per share?",
                 ["Basic earnings per share increased 20% to 310 cents for the period.",
                  "Headline earnings per share rose 25% to 320 cents for the period."], 2, id="headline-eps"),
    pytest.param("What share of sales came from own brands?",
                 ["Brand partners accounted for 40% of sales in the quarter, up from 38%.",
                  "Own brands accounted for 28% of sales in the quarter, up from 26%."], 2, id="own-brands"),
    pytest.param("What was sell-through in the quarter?",
                 ["Net sales were $200 million in the quarter, up 6% from last year.",
                  "Sell-through was up high single digits in the quarter across our key retail partners."], 2,
                 id="sell-through"),
    pytest.param("Tell me about Acme's strategy for its debt.",
                 ["Our strategy is to refinance near-term maturities and keep reducing debt, prioritizing "
                  "deleveraging.", "Total debt at quarter end was $450 million."], 1, id="tell-me-asks-no-figure"),
    pytest.param("What was gross merchandise value (GMV) in the second quarter?",
                 ["Gross merchandise value was $4.1 billion in the second quarter, up 35%.",
                  "Our marketplace grew faster than our first-party business."], 1, id="gmv-spelled-out"),
    pytest.param("Which COVID costs does Acme expect to roll off?",
                 ["We expect COVID-related costs such as cleaning and PPE of about $10 million to roll off next year.",
                  "We expect freight expenses to roll off as capacity normalizes next year."], 1,
                 id="a-list-of-what-a-company-does"),
])
def test_review_counter_examples(question: str, passages: list[str], expected: int) -> None:
    numbered = dict(enumerate(passages, 1))
    text = answer(question, numbered, companies=dict.fromkeys(numbered, "MTN Ghana" if "MTN" in question else "Acme"))
    assert text == f"{numbered[expected]} [{expected}]", text


@pytest.mark.parametrize("flow", ["Our cash use for the quarter ended June 30th, 2020 was $15 million Euros.",
                                  "Net cash in operating activities was $15 million Euros in the second quarter."])
def test_cash_used_in_operating_activities_is_no_cash_held(flow: str) -> None:
    passages = {1: flow, 2: "We ended the second quarter with cash and financial assets of $92.6 million Euros."}
    assert answer("How much cash did Affimed have at the end of Q2 2020?", passages,
                  companies=dict.fromkeys(passages, "Affimed")) == f"{passages[2]} [2]"


def test_the_call_a_question_is_dated_by_is_not_the_period_asked() -> None:
    passages = {1: "For 2020, we continue to expect our adjusted EPS to be in the range of $8.70 to $9.20.",
                2: "For 2022, we expect to grow adjusted EPS in the range of 6 to 8%, translating to $10 to $10.75."}
    assert answer("NextEra 2022 adjusted EPS expectations as of the Q2 2020 call?", passages,
                  companies=dict.fromkeys(passages, "NextEra Energy")) == f"{passages[2]} [2]"


def test_housekeeping_is_never_quoted_and_non_performing_loans_are_npls() -> None:
    passages = {1: "By now, everyone should have access to our earnings press release and the presentations for "
                   "today's call.",
                2: "Net income decreased 25% year on year to 4.2 billion pesos."}
    assert answer("What did Banco Santander México earn in Q2 2020?", passages,
                  companies=dict.fromkeys(passages, "Banco Santander Mexico")) == f"{passages[2]} [2]"
    assert answer("What did Banco Santander México earn in Q2 2020?", {1: passages[1]},
                  companies={1: "Banco Santander Mexico"}) == NOT_FOUND
    lists = {1: "Our total NPL ratio showed a slight 28 basis points increase to 2.5%.",
             2: "We use non-GAAP measures as we believe they more accurately represent our operating performance.",
             3: "Non-performing loans rose to 1.1% of the portfolio."}
    text = answer("Which Latin American banks discussed their non-performing loans?", lists,
                  companies={1: "Banco Santander Mexico", 2: "YETI", 3: "Itau CorpBanca"})
    assert "[1]" in text and "[3]" in text and "[2]" not in text, text


def test_revenue_from_a_product_line_is_a_part_even_beside_the_total_it_is_a_share_of() -> None:
    passages = {1: "Revenue for the quarter was $32.7 million, up 52% sequentially.",
                2: "Revenue from our identity products, which includes sales of access credentials, total 15.4 million "
                   "or 62% of our total revenue in Q3.",
                3: "We closed out the third quarter of 2020 with 24.9 million in total revenue, up 30%."}
    text = answer("Compare SiTime's and Identiv's Q3 2020 revenue.", passages,
                  companies={1: "SiTime", 2: "Identiv", 3: "Identiv"})
    assert "24.9 million" in text and "15.4 million" not in text, text


def test_the_total_is_the_companys_figure_and_a_business_within_is_a_part() -> None:
    passages = {1: "Within our identity business, revenue increased sequentially by 33% to 15.4 million.",
                2: "We closed out the third quarter of 2020 with 24.9 million in total revenue, up 30%.",
                3: "Overall, revenues grew 30% sequentially, showing strength across the business."}
    text = answer("What was Identiv's revenue in Q3 2020?", passages, companies=dict.fromkeys(passages, "Identiv"))
    assert text == f"{passages[2]} [2]", text
    within = {1: passages[1], 2: "Revenue for the quarter was 24.9 million, up 30%."}
    assert answer("What was Identiv's revenue in Q3 2020?", within, companies=dict.fromkeys(within, "Identiv")) == \
        f"{within[2]} [2]"
    # An unqualified mention is no part, but "total revenue" says more plainly that it is the company's.
    plain = {1: "Revenue in the quarter benefited from federal sales of 4.9 million.", 2: passages[2]}
    assert answer("What was Identiv's revenue in Q3 2020?", plain, companies=dict.fromkeys(plain, "Identiv")) == \
        f"{plain[2]} [2]"


def test_a_follow_up_naming_another_region_or_unit_keeps_only_the_metric() -> None:
    passages = {1: "US sales of 131 million declined 60.3% compared to the prior year.",
                2: "European sales were $215 million, down 49% compared to the prior year."}
    assert answer("What about Europe? (context: What were Dentsply Sirona's US sales in Q2 2020?)", passages,
                  companies=dict.fromkeys(passages, "Dentsply Sirona")) == f"{passages[2]} [2]"
    units = {1: "Sea Logistics delivered an EBIT of CHF 270 million in the first half.",
             2: "Slide 11, a short overview on Road Logistics.",
             3: "Road Logistics ended the first semester with an EBIT of CHF26 million."}
    assert answer("And Road Logistics? (context: What EBIT did Kuehne + Nagel's Sea Logistics unit report for H1 "
                  "2020?)", units, companies=dict.fromkeys(units, "Kuehne + Nagel")) == f"{units[3]} [3]"
    # A slide's heading says nothing of its own.
    assert answer("What did Kuehne + Nagel say about Road Logistics?", units,
                  companies=dict.fromkeys(units, "Kuehne + Nagel")).startswith(f"{units[3]} [3]")


def test_revenue_landing_within_guidance_asks_for_the_revenue() -> None:
    passages = {1: "Our total revenue in the third quarter of 2020 was RMB 303 million, in line with our previous "
                   "guidance range.",
                2: "Paid services revenue was RMB 21.7 million.",
                3: "Advertising revenue was RMB 281 million.",
                4: "Our guidance reflects the pandemic's impact on advertisers."}
    assert answer("Did Phoenix New Media's Q3 2020 revenue land within its guidance?", passages,
                  companies=dict.fromkeys(passages, "Phoenix New Media")).startswith(f"{passages[1]} [1]")


def test_where_revenue_landed_relative_to_guidance_asks_for_the_figure() -> None:
    passages = {1: "Product portfolio maturity: hardware sales remain important while subscription economics ramp as "
                   "customers migrate, and we expect more.",
                2: "Calix reported Q4 revenue of $206 million, up 2.6% sequentially and at the high end of guidance."}
    assert answer("Where did Q4 revenue land relative to guidance?", passages,
                  companies=dict.fromkeys(passages, "Calix")) == f"{passages[2]} [2]"
    # Where it landed is a figure: a sentence without one does not say...
    plain = {1: "Q4 revenue landed well, as customers migrated to our platforms.", 2: passages[2]}
    assert answer("Where did Q4 revenue land?", plain, companies=dict.fromkeys(plain, "Calix")) == f"{plain[2]} [2]"
    # ...unless the question measures it against guidance, which words answer.
    upper = {1: "We confirm our full year guidance and now expect EBITDA to be at the upper end of it."}
    assert answer("Where does RWE now expect its full-year 2020 adjusted EBITDA to land within its guidance?", upper,
                  companies={1: "RWE"}) == f"{upper[1]} [1]"


def test_a_name_the_question_asks_about_may_be_in_the_sentences_passage() -> None:
    passages = {1: "We signed a partnership with Zimmer Biomet's dental division, a leader in dental implants. This "
                   "partnership allows us to access the dental and oral surgery market of an estimated seven and a "
                   "half million annual procedures.",
                2: "DSUVIA net revenue was $0.3 million in the quarter, with 25 annual contracts signed."}
    text = answer("How many annual procedures can AcelRx access via the Zimmer Biomet partnership?",
                  passages, companies=dict.fromkeys(passages, "AcelRx Pharmaceuticals"))
    assert "seven and a half million annual procedures" in text, text


def test_a_code_the_question_hinges_on_must_be_said() -> None:
    passages = {1: "The core driver of our RFID business is the mass market adoption of integrated products.",
                2: "5G deployments in Korea kept growing across the country."}
    text = answer("Which companies discussed 5G business drivers?", passages,
                  companies={1: "Identiv", 2: "SK Telecom"})
    assert "[1]" not in text, text


def test_a_legal_form_in_a_question_is_no_topic() -> None:
    assert focus_terms("Why did New Home Co's gross margin improve so much in Q3 2020?") == {
        "new", "home", "gross", "margin", "improv", "q3", "2020"}  # the name's words go in answer(), by the passages


# Two reviews' counter-examples to rules of stop 31, each once answered wrongly by a first version of its rule:
# follow-ups that name a topic of their own, or imply their own period; comparisons of what companies think; "impact"
# asked as a noun; slashes inside one concept; a count asked about; "M & A" spaced; "moving to" in a sentence of its
# own; a "who" question naming a company it does not compare; two changes asked ("revenue and EBITDA growth"); capex
# asked with operating expenses; days "on hand".
@pytest.mark.parametrize(("question", "texts", "period", "expected"), [
    ("And headcount at the end of 2020? (context: What was Acme's revenue in Q3 2020?)",
     ["Revenue was $1.2 billion in Q3 2020, up 6%.", "We ended 2020 with a headcount of about 12,400 employees."],
     "Q4 2020", "12,400"),
    ("How many stores in 2021? (context: What were Acme's capital expenditures in 2020?)",
     ["Capital expenditures were $300 million in 2020.", "We plan to open 40 stores in 2021."], "Q4 2020", "40 stores"),
    ("What about Europe next year? (context: What was Acme's revenue growth in 2020?)",
     ["Revenue grew 6% in 2020.", "European revenue grew 4% in 2020.", "In 2021 we expect European sales to grow 8%."],
     "Q4 2020", "grow 8%"),
    ("What about the Investor Day targets? (context: What was Acme's operating margin in Q3 2020?)",
     ["Operating margin was 12.4% in Q3 2020, up 80 basis points.",
      "At our Investor Day we set a target of 18% operating margin by 2023.",
      "Q3 2020 operating margin puts us on the path toward our Investor Day targets."], "Q3 2020", "18%"),
    ("What was the FX impact on revenue in Q3 2020?",
     ["Revenue was $1.2 billion in Q3 2020, up 4% year over year in constant currency.",
      "Foreign exchange had a negative impact of $35 million on revenue in the third quarter."], "Q3 2020",
     "$35 million"),
    ("What was the loan/deposit ratio at the end of Q3 2020?",
     ["Our efficiency ratio improved to 55.2% and deposit costs fell 12 basis points.",
      "The loan-to-deposit ratio ended the quarter at 82%, down from 88% a year ago."], "Q3 2020", "82%"),
    ("What is Acme's view on the US rig count?",
     ["Our view is that the US rig count has bottomed and will grind higher through next year. US rigs averaged 250 in "
      "the quarter."], "Q4 2020", "has bottomed"),
    ("What did Acme say about M&A?",
     ["On M & A, we remain active and see a healthy pipeline of bolt-on targets.",
      "Revenue grew 5% in the quarter, driven by volume."], "Q3 2020", "On M & A"),
    ("What was the revenue and EBITDA growth for Acme in Q3 2020?",
     ["In the third quarter, revenue increased 12% and adjusted EBITDA increased 18% year over year.",
      "Third quarter revenue was $2.3 billion, and adjusted EBITDA was $410 million, up year over year."],
     "Q3 2020", "increased 18%"),
    ("What were Acme's sales and EPS growth in Q3 2020?",
     ["Third quarter sales rose 7% and diluted EPS rose 15% versus last year.",
      "Third quarter sales were $2.3 billion and diluted EPS was $1.05, up from last year."], "Q3 2020", "rose 15%"),
    ("What is Acme's 2021 guidance for capex and operating expenses?",
     ["For 2021, we expect capex of $200 million and an operating margin of about 15%.",
      "For 2021, we expect capex of $200 million and operating expenses of $1.1 billion."], "Q4 2020", "$1.1 billion"),
    ("What were Acme's inventory days on hand at the end of Q3 2020?",
     ["Inventory rose 12 days sequentially as we built stock ahead of the holiday season.",
      "We ended the third quarter with 92 days of inventory on hand, versus 85 a year ago."], "Q3 2020", "92 days"),
    ("How many M&As did Acme complete in 2020?",
     ["We completed 7 M&A transactions in 2020 for a total of $350 million.", "Revenue was $2 billion in 2020."],
     "Q4 2020", "7 M&A"),
])
def test_the_reviews_counter_examples(question: str, texts: list[str], period: str, expected: str) -> None:
    passages = dict(enumerate(texts, 1))
    text = answer(question, passages, companies=dict.fromkeys(passages, "Acme"),
                  titles=dict.fromkeys(passages, f"Acme {period} earnings call"))
    assert expected in text, text


def test_the_reviews_counter_examples_of_two_companies() -> None:
    companies = {1: "Acme", 2: "Acme", 3: "Beta Corp", 4: "Beta Corp"}
    passages = {1: "Consumer demand remained resilient, and we saw healthy trends across all income cohorts.",
                2: "Demand trends in the quarter drove a 4% increase in units, and consumer traffic rose 2%.",
                3: "Consumer demand trends softened in lower-income households as stimulus faded.",
                4: "Consumer demand trends contributed to 3% growth in our 2,400 stores."}
    text = answer("How did Acme and Beta Corp characterize consumer demand trends?", passages, companies=companies)
    assert text == f"Acme: {passages[1]} [1] Beta Corp: {passages[3]} [3]", text
    passages = {1: "Moving to a subscription model will lower reported revenue in the near term but improve "
                   "visibility. Gross margin was 61% in the quarter."}
    text = answer("What did Acme say about moving to a subscription model?", passages, companies={1: "Acme"})
    assert "Gross margin" not in text, text
    passages = {1: "In data analytics, our main competitor besides Beta Corp is Snowflake, which we see in most deals.",
                2: "Beta Corp data analytics revenue was $500 million, up 20%."}
    text = answer("Who is Acme's main competitor in data analytics besides Beta Corp?", passages,
                  companies={1: "Acme", 2: "Beta Corp"})
    assert "Snowflake" in text and "$500 million" not in text, text
