"""Question-style prompts built from CounterFact's statement prompts, so the editor is also trained on
(and serves) questions: "The mother tongue of Danielle Darrieux is" -> "What is the mother tongue of
Danielle Darrieux?".

The rule works on the record's relation template: its prompt with the subject replaced by `{}`
("The mother tongue of {} is"); every record of one relation shares it, so one rule covers them all.
In order (AUX is one of is / was / are / were):
1. the template holds a question already ("What is the twin city of {}? It is"): the text up to its
   first "?" ("What is the twin city of Lyon?"); a zsRE question is kept whole;
2. "{} AUX REST": ends in " in" -> "Where AUX {} REST-without-in?" ("Where is X located?");
   ends in " by" -> "Who AUX {} REST?" ("Who is X developed by?"); else "What AUX {} REST?"
   ("What is X a twin city of?");
3. "In {}, REST AUX" -> "In {}, what AUX REST?" ("In France, what is the language spoken?");
4. "The/A/An ... {} ... AUX" (ends in AUX) -> "What AUX the ... {} ...?" ("What is the mother tongue
   of X?");
5. anything else -> the statement followed by " what?" ("X, who plays the position what?"), an echo
   question: crude, but still a question about the same fact.
Without a subject found in the prompt, rules 1, 4 (on the whole prompt) and 5 apply.
"""

from __future__ import annotations

import re

AUX = ("is", "was", "are", "were")
_SUBJECT_FIRST = re.compile(r"^\{\} (is|was|are|were) (.+)$")
_IN_SUBJECT = re.compile(r"^In \{\}, (.+) (is|was|are|were)$")
_ENDS_AUX = re.compile(r"^(The|A|An) (.+) (is|was|are|were)$")


def relation_template(prompt: str, subject: str) -> str | None:
    """The prompt with its subject replaced by "{}" (first occurrence), or None when the subject is not
    in it. Braces in the prompt are kept apart from the placeholder."""
    prompt, subject = prompt.strip(), subject.strip()
    if not subject or subject not in prompt or "{}" in prompt:
        return None
    return prompt.replace(subject, "{}", 1)


def question_from_template(template: str) -> str:
    """The question form of a relation template (rules 1-5 of the module docstring); keeps "{}"."""
    t = " ".join(template.split())
    if "?" in t:
        return t[:t.index("?") + 1]
    m = _SUBJECT_FIRST.match(t)
    if m:
        aux, rest = m.groups()
        if rest.endswith(" in") or rest == "in":
            rest = rest[:-len("in")].strip()
            return f"Where {aux} {{}}{' ' + rest if rest else ''}?"
        wh = "Who" if rest.endswith(" by") else "What"
        return f"{wh} {aux} {{}} {rest}?"
    m = _IN_SUBJECT.match(t)
    if m:
        rest, aux = m.groups()
        return f"In {{}}, what {aux} {rest}?"
    m = _ENDS_AUX.match(t)
    if m:
        article, rest, aux = m.groups()
        return f"What {aux} {article.lower()} {rest}?"
    return f"{t.rstrip(' ,.:;')} what?"


def question_prompt(prompt: str, subject: str = "") -> str:
    """The question form of one record's statement prompt.

    >>> question_prompt("The mother tongue of Danielle Darrieux is", "Danielle Darrieux")
    'What is the mother tongue of Danielle Darrieux?'
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"prompt: must be non-empty, got {prompt!r}")
    template = relation_template(prompt, subject)
    if template is None:  # no subject to hold apart: the rules that need none
        text = " ".join(prompt.split())
        if "?" in text:
            return text[:text.index("?") + 1]
        m = _ENDS_AUX.match(text)
        if m:
            article, rest, aux = m.groups()
            return f"What {aux} {article.lower()} {rest}?"
        return f"{text.rstrip(' ,.:;')} what?"
    return question_from_template(template).replace("{}", subject.strip(), 1)
