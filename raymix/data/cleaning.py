"""Text cleaners for the real-text corpus sources: markup, headers, addresses, whitespace.

Each function takes one raw document (``str``) and returns cleaned text (``str``); none of them does
I/O.  They exist because the installable corpora of :mod:`raymix.data.presets` ship text wrapped in
format-specific markup that a language model should not learn as if it were prose:

* GCIDE (Webster 1913 dictionary, dictd format): ``\\pron\\`` pronunciations, ``{cross refs}``,
  ``[1913 Webster]`` source tags, ``<i>..</i>`` tags and ``[a^]``-style diacritic codes;
* OSIS (SWORD bible modules): XML tags and footnotes;
* RFC 822 e-mail: transport headers and real e-mail addresses (privacy: the SpamAssassin corpus
  contains addresses of real people);
* whitespace: CRLF, tabs, trailing blanks, runs of blank lines, control characters.
"""

from __future__ import annotations

import email
import email.policy
import html
import re
import unicodedata

__all__ = [
    "EMAIL_PLACEHOLDER",
    "email_body",
    "normalize_whitespace",
    "scrub_email_addresses",
    "strip_email_headers",
    "strip_gcide_markup",
    "strip_html_tags",
    "strip_osis_tags",
]

# ---------------------------------------------------------------------------------------------- whitespace

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TRAILING = re.compile(r"[ \t]+\n")
_BLANK_RUNS = re.compile(r"\n{3,}")


def normalize_whitespace(text: str, *, tab_size: int = 4, dedent: bool = False) -> str:
    """Normalize line endings and blank space without touching in-line content.

    CRLF/CR → LF, NFC unicode normalization, control characters (except ``\\t``, ``\\n``) removed,
    tabs expanded to ``tab_size`` spaces (so code indentation survives), trailing blanks removed, runs
    of ≥ 3 newlines collapsed to one blank line, leading/trailing blank lines dropped.  With
    ``dedent=True`` every line's leading spaces are removed as well (hanging-indent formats such as
    dictionary entries, where the indentation carries no meaning).
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub("", text)
    text = text.expandtabs(tab_size)
    text = _TRAILING.sub("\n", text + "\n")
    if dedent:
        text = "\n".join(line.lstrip(" ") for line in text.split("\n"))
    text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip("\n").rstrip()


# ---------------------------------------------------------------------------------------------- GCIDE

# Source tags that close every GCIDE sense: "[1913 Webster]", "[Webster 1913 Suppl.]", "[WordNet 1.5]",
# "[PJC]", "[Century Dict.]", ... They are bibliography, not text.
_GCIDE_SOURCE_TAG = re.compile(
    r"\[(?:\d{4} Webster|Webster \d{4}[^\]]*|WordNet[^\]]*|PJC|RN|Century Dict\.?[^\]]*|Chambers[^\]]*|"
    r"Obs\. ?1913 Webster)\]"
)
# Pronunciation between backslashes ("\A*ban\"don\"), optionally followed by a respelling in parentheses
# that uses the bracketed diacritic codes: "\A*ban\"don\ ([.a]*b[a^]n\"d[u^]n)".
_GCIDE_PRON = re.compile(r"\\[^\\\n]{1,80}\\(?:\s*\((?=[^()\n]*\[)[^()\n]*\))?")
# Bracketed diacritic codes: "[a^]", "[=e]", "[.a]", "[aum]", "[^o]", "[e~]", "[-e]", "[ae]" (ligature).
_GCIDE_DIACRITIC = re.compile(r"\[(?:[.=\-^~`'\"]([A-Za-z])|([A-Za-z])(?:[.=\-^~`'\"]|um|cced|acute|grave))\]")
_GCIDE_LIGATURE = re.compile(r"\[(ae|AE|oe|OE)\]")
_XML_TAG = re.compile(r"<[^<>\n]{1,200}>")
# Syllable/stress marks inside run-in derived forms: "E`qui*dis\"tant*ly" -> "Equidistantly".
_GCIDE_STRESS = re.compile(r"(?<=[A-Za-z])[*\"`](?=[A-Za-z])")
# Named-character codes of the GCIDE text; unknown codes are left as they are.
_GCIDE_ENTITIES = {"[sect]": "\u00a7", "[deg]": "\u00b0", "[frac12]": "\u00bd", "[frac14]": "\u00bc",
                   "[frac34]": "\u00be", "[pound]": "\u00a3", "[cent]": "\u00a2", "[dagger]": "\u2020",
                   "[prime]": "\u2032", "[min]": "\u2032", "[sec]": "\u2033", "[times]": "\u00d7",
                   "[divide]": "\u00f7", "[para]": "\u00b6", "[ddagger]": "\u2021"}


def strip_gcide_markup(text: str) -> str:
    """Turn one GCIDE (dictd) entry into plain text.

    Removes ``\\..\\`` pronunciation spans (and a following diacritic respelling in parentheses),
    ``[1913 Webster]``-style source tags and ``<..>`` tags; keeps the words inside ``{..}`` cross
    references without the braces; maps diacritic codes (``[a^]`` → ``a``, ``[ae]`` → ``ae``, ``[sect]`` → ``§``),
    drops stress marks inside words (``E`qui*dis"tant*ly`` → ``Equidistantly``); removes
    the hanging indentation.  Sense numbers, ``Syn:``/``Usage:`` labels and ``--Author.`` citations
    stay: they are part of the dictionary's prose.
    """
    text = _GCIDE_PRON.sub("", text)
    text = _GCIDE_SOURCE_TAG.sub("", text)
    text = _XML_TAG.sub("", text)
    text = text.replace("{", "").replace("}", "")
    text = _GCIDE_DIACRITIC.sub(lambda m: m.group(1) or m.group(2), text)
    text = _GCIDE_LIGATURE.sub(lambda m: m.group(1), text)
    text = _GCIDE_STRESS.sub("", text)
    for code, char in _GCIDE_ENTITIES.items():
        text = text.replace(code, char)
    text = re.sub(r"[ \t]+([,;.])", r"\1", text)  # "Abandon , v." left behind by a removed pronunciation
    text = re.sub(r"[ \t]{2,}", " ", text)
    return normalize_whitespace(text, dedent=True)


# ---------------------------------------------------------------------------------------------- OSIS

# Footnotes and cross-reference notes carry apparatus, not running text: drop element and content.
_OSIS_NOTE = re.compile(r"<note\b[^>]*>.*?</note>", re.DOTALL)
_OSIS_SELF_CLOSING_BREAK = re.compile(r"<(?:lb|l|p|div|lg)\b[^>]*/>")
_ANY_TAG = re.compile(r"<[^<>]+>")


def strip_osis_tags(text: str) -> str:
    """Remove OSIS XML markup (SWORD modules exported with ``mod2imp``) and keep the verse text.

    ``<note>..</note>`` elements are dropped with their content; line/paragraph milestones become
    line breaks; every other tag is removed; XML entities are unescaped.
    """
    text = _OSIS_NOTE.sub("", text)
    text = _OSIS_SELF_CLOSING_BREAK.sub("\n", text)
    text = _ANY_TAG.sub("", text)
    text = html.unescape(text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    return normalize_whitespace(text, dedent=True)


# ---------------------------------------------------------------------------------------------- e-mail

# Deliberately permissive: it must catch obfuscated corpus addresses ("zzzz@localhost") too.
_EMAIL_ADDRESS = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*(?![\w@])")
EMAIL_PLACEHOLDER = "[email]"


def scrub_email_addresses(text: str, replacement: str = EMAIL_PLACEHOLDER) -> str:
    """Replace every e-mail address (``local@domain``) by ``replacement``; also ``<addr>`` brackets."""
    text = re.sub(r"<\s*(" + _EMAIL_ADDRESS.pattern + r")\s*>", replacement, text)
    return _EMAIL_ADDRESS.sub(replacement, text)


_HEADER_LINE = re.compile(r"^(?:From |[!-9;-~]+:)")


def strip_email_headers(message: str) -> str:
    """Return the body of a raw RFC 822 message: everything after the first blank line.

    Only strips when the text really starts with a header block (an mbox ``From `` line or
    ``Name: value`` lines); text without headers is returned unchanged.  Does not decode MIME — see
    :func:`email_body` for that.
    """
    message = message.replace("\r\n", "\n")
    if not _HEADER_LINE.match(message):
        return message
    head, sep, body = message.partition("\n\n")
    return body if sep else ""


_HTML_BREAK = re.compile(r"<(?:br|/p|/div|/tr|/li|/h\d)\b[^>]*>", re.IGNORECASE)
_HTML_DROP = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)


def strip_html_tags(text: str) -> str:
    """Crude HTML → text for e-mail parts: drop script/style/head, tags → nothing, block ends → newline."""
    text = _HTML_DROP.sub("", text)
    text = _HTML_BREAK.sub("\n", text)
    text = _ANY_TAG.sub("", text)
    return html.unescape(text)


def email_body(raw: str, *, replacement: str = EMAIL_PLACEHOLDER) -> str:
    """Cleaned body text of a raw RFC 822 / MIME message.

    Parses with :mod:`email` (so quoted-printable/base64 parts are decoded), prefers ``text/plain``
    parts and falls back to tag-stripped ``text/html``; drops all headers (they carry routing data
    and real addresses), scrubs e-mail addresses from the body and normalizes whitespace.  Returns
    ``""`` when the message has no textual body.
    """
    msg = email.message_from_string(raw.replace("\r\n", "\n"), policy=email.policy.compat32)
    plain: list[str] = []
    html_parts: list[str] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if ctype not in ("text/plain", "text/html"):
            continue
        payload = part.get_payload(decode=True)
        if payload is None:
            continue
        charset = part.get_content_charset() or "latin-1"
        try:
            text = payload.decode(charset, errors="replace")
        except LookupError:  # unknown charset name in a header of a 2002 message
            text = payload.decode("latin-1", errors="replace")
        (plain if ctype == "text/plain" else html_parts).append(text)
    if plain:
        body = "\n\n".join(plain)
    elif html_parts:
        body = "\n\n".join(strip_html_tags(h) for h in html_parts)
    else:
        return ""
    return normalize_whitespace(scrub_email_addresses(body, replacement))
