"""Every word list the planner reads requests and manuals with, in one place.

Each list or pattern carries one line saying what it is for and which stage uses it (read:
typos, negations, clauses, language; choose: exact-word evidence; units: what the manuals'
'cannot do' sentences deny and the request-like questions generated per output).
"""

from __future__ import annotations

import re

# --- read: clauses --------------------------------------------------------------------------
# Where a multi-part request splits into clauses (punctuation and "and then", "und", "然后", ...).
CLAUSE_SPLIT = re.compile(
    r"\s*(?:[,;:!?。，；？！+&]|\band then\b|\bthen\b|\bbefore\b|\bafter\b|\band also\b|\balso\b|\bas well as\b|\bplus\b|\band\b"
    r"|\bet\b|\bpuis\b|\by\b|\be\b|\bund\b|\bdann\b|\bsowie\b|\bed\b|以及|然后|还有|和|并且)\s*",
    re.IGNORECASE,
)

# --- read: language ---------------------------------------------------------------------------
# Languages other than English, named in the languages the planner reads: a request that names
# one ("caption it in Spanish", "a voice note I recorded in German", "en français", "翻译成日语")
# asks for text to cross languages, while the manuals (and so the models' text) are English.
OTHER_LANGUAGE = re.compile(
    r"\b(?:french|german|spanish|italian|portuguese|chinese|mandarin|cantonese|japanese|korean"
    r"|dutch|russian|arabic|hindi|turkish|polish|swedish|greek|vietnamese|thai|indonesian"
    r"|français|francais|allemand|espagnol|italien|chinois|japonais|coréen|portugais|néerlandais"
    r"|russe|arabe|französisch|deutsch|deutsche|deutschen|spanisch|italienisch|chinesisch"
    r"|japanisch|koreanisch|portugiesisch|niederländisch|russisch|francés|alemán|español"
    r"|italiano|chino|japonés|coreano|portugués|ruso|árabe|francese|tedesco|spagnolo|cinese"
    r"|giapponese|portoghese|russo|francês|alemão|espanhol|chinês|japonês|português|frans|duits"
    r"|spaans|italiaans|chinees|japans|nederlands)\b"
    r"|法语|法文|德语|德文|西班牙语|西班牙文|意大利语|中文|汉语|日语|日文|韩语|韩文|葡萄牙语|俄语"
    r"|フランス語|ドイツ語|スペイン語|イタリア語|中国語|韓国語|日本語|ポルトガル語|ロシア語",
    re.IGNORECASE,
)
# The implicit clause a request naming another language adds ("caption it in Spanish").
TRANSLATION_CLAUSE = "translate the text into another language"

# --- read: contrastive negations ------------------------------------------------------------
# A contrastive negation ("..., not from my phone", "the raw figure, not a verdict", "rather
# than a score", "without my phone data"): the phrase after it names what the person does NOT
# want. It runs to the end of its sentence or clause. "not" / "instead of" count only after a
# comma, dash or sentence start or "but"/"only", and (like "rather than" / "without") only before
# a determiner or preposition, so that a plain negated verb ("is one cylinder not firing?", "...
# or not?", "without paying", "don't want it going over") is no such phrase; a negating
# determiner ("..., no predictions", "keine Prognose", "geen oordeel", "no un pronóstico") counts
# after a comma, dash or sentence start.
_LEAD = r"(?:(?:and|but|just|only)\s+)?"
_NEGATORS = r"not|instead of"  # only after a comma, dash, sentence start or "but"
_CONTRASTS = r"rather than|without"  # anywhere
_NEGATING_DETERMINERS = r"no|kein\w*|geen|aucune?|ningún|ninguna|nessun\w*"
_DETERMINED = (
    r"(?:(?:just|only|even|using|any|use)\s+)?"
    r"(?:from|by|with|via|through|based on|a|an|the|my|our|any|his|her|their|its)\b"
)
NEGATED_PHRASE = re.compile(
    r"(?:(?:(?<=[,;:.!?\u2014\u2013])|(?<=\s[-\u2014\u2013])|^|\bbut\b)\s*"
    + _LEAD
    + rf"(?:(?:{_NEGATORS})\s+{_DETERMINED}|(?:{_NEGATING_DETERMINERS})\s+(?=\w))"
    + rf"|\s*\b(?:{_CONTRASTS})\s+{_DETERMINED})"
    + r"[^,;.!?\u3002]*",
    re.IGNORECASE,
)
# the marker at the head of a negated phrase, cut off before the phrase is scored
NEGATION_MARK = re.compile(
    rf"^{_LEAD}(?:{_NEGATORS}|{_CONTRASTS}|{_NEGATING_DETERMINERS})\s+(?:(?:using|use)\s+)?",
    re.IGNORECASE,
)
# --- read: is this request English? ---------------------------------------------------------
# English function words: a request with enough of them is English (MiniLM reads it as typed).
_ENGLISH_WORDS = (
    "the a an is are was were am be been my me mine i i'm you your we our he she his her they their "
    "what how who when where which why whats what's do does did can could would will should please "
    "of to in on for and or with from by about this that these those it its at as any some all "
    "not no yes if so just now right today tonight yesterday tomorrow there here tell show give "
    "check get let make find much many more most"
)
ENGLISH_FUNCTION_WORDS = frozenset(re.findall(r"\S+", _ENGLISH_WORDS))

# --- read: typo repair (spelling.py) --------------------------------------------------------
# A 30k-piece vocabulary misses many inflected words ("metrics", "caption" = "cap" + "##tion");
# a known stem plus one of these endings counts as known.
KNOWN_ENDINGS = (
    "s",
    "es",
    "d",
    "ed",
    "ing",
    "er",
    "ers",
    "ly",
    "ion",
    "ions",
    "tion",
    "tions",
    "ation",
    "ations",
    "ment",
    "ments",
    "ness",
    "ity",
    "al",
    "ally",
    "able",
    "ive",
    "ise",
    "ize",
    "ised",
    "ized",
    "ising",
    "izing",
    "y",
)


# --- choose: exact-word evidence (lexical.py) ------------------------------------------------
# scikit-learn's English stop-word list (sklearn.feature_extraction.text.ENGLISH_STOP_WORDS,
# 318 words), copied because importing scikit-learn costs 2.7 s of every `edgeai plan` start
# (measured with -X importtime); tests/agents/planning/test_lexical.py checks the copy.
_SKLEARN_STOP_WORDS = """
    a about above across after afterwards again against all almost alone along already also
    although always am among amongst amoungst amount an and another any anyhow anyone
    anything anyway anywhere are around as at back be became because become becomes becoming
    been before beforehand behind being below beside besides between beyond bill both bottom
    but by call can cannot cant co con could couldnt cry de describe detail do done down due
    during each eg eight either eleven else elsewhere empty enough etc even ever every
    everyone everything everywhere except few fifteen fifty fill find fire first five for
    former formerly forty found four from front full further get give go had has hasnt have
    he hence her here hereafter hereby herein hereupon hers herself him himself his how
    however hundred i ie if in inc indeed interest into is it its itself keep last latter
    latterly least less ltd made many may me meanwhile might mill mine more moreover most
    mostly move much must my myself name namely neither never nevertheless next nine no
    nobody none noone nor not nothing now nowhere of off often on once one only onto or
    other others otherwise our ours ourselves out over own part per perhaps please put
    rather re same see seem seemed seeming seems serious several she should show side since
    sincere six sixty so some somehow someone something sometime sometimes somewhere still
    such system take ten than that the their them themselves then thence there thereafter
    thereby therefore therein thereupon these they thick thin third this those though three
    through throughout thru thus to together too top toward towards twelve twenty two un
    under until up upon us very via was we well were what whatever when whence whenever
    where whereafter whereas whereby wherein whereupon wherever whether which while whither
    who whoever whole whom whose why will with within without would yet you your yours
    yourself yourselves
"""
SKLEARN_STOP_WORDS = frozenset(_SKLEARN_STOP_WORDS.split())
# scikit-learn's English stop-word list also holds content words that name what a model does
# or what a request asks about ("describe this photo", "empty shelves", "fill level")
CONTENT_STOP_WORDS = frozenset(
    [
        "amount",
        "bill",
        "bottom",
        "call",
        "describe",
        "detail",
        "empty",
        "fill",
        "find",
        "fire",
        "front",
        "full",
        "interest",
        "move",
        "name",
        "part",
        "serious",
        "show",
        "side",
        "system",
        "thick",
        "thin",
    ]
)
# Endings stripped to a stem before words are compared (BM25 terms).
STEM_SUFFIXES = ("ing", "ed", "es", "s", "ly")
# British spellings mapped to American ones before stemming ("colour" -> "color").
BRITISH_SPELLINGS = (
    (re.compile(r"our(s|ed|ing)?$"), r"or\1"),
    (re.compile(r"([iy])s(e|es|ed|ing|ation)$"), r"\1z\2"),
)


# --- units: what manuals deny and what users ask ---------------------------------------------
# A negation in a manual sentence: the sentence says what the device or a model cannot do.
LIMIT_NEGATION = re.compile(
    r"\b(not|no|none|cannot|can't|doesn't|don't|won't|isn't|never|unable|neither|nor)\b",
    re.IGNORECASE,
)

# Request-like texts generated per declared output (doc2query without an LLM): users ask for a
# model's result ("what is my heart rate?"), which manuals rarely phrase as a question.
QUERY_TEMPLATES = ("what is my {out}?", "how is my {out}?", "tell me the {out}", "check my {out}")
