"""Argo Rollouts analysis conditions (``successCondition``/``failureCondition``) as PromQL filters.

Argo evaluates a condition such as ``result[0] >= 0 && result[0] <= 0.02`` on the query's result. To
grade a learner's template with ``promtool test rules``, :func:`to_promql` rewrites the condition over
the query itself: each comparison of ``result[0]`` with a number becomes a PromQL comparison filter,
``&&``/``and`` become ``and on()``, ``||``/``or`` become ``or on()`` and ``!``/``not`` become
``vector(1) unless on()``. The result is non-empty exactly when Argo would find the condition true
(NaN compares false in both). Only this subset of Argo's expression language is read; anything else
raises :class:`ConditionError` naming the form to write.
"""

from __future__ import annotations

import re

from mlops_workbench.errors import InputError

TOKEN = re.compile(
    r"\s*(?:(?P<result>result\s*\[\s*0\s*\])|(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
    r"|(?P<op>&&|\|\||<=|>=|==|!=|<|>|!|\(|\)|-)|(?P<word>[A-Za-z_][A-Za-z_0-9]*))"
)
NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
COMPARE = {"<", "<=", ">", ">=", "==", "!="}
FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
WORDS = {"and": "&&", "or": "||", "not": "!"}
FORM = (
    "compare result[0] with numbers and join the comparisons with && and || "
    "(e.g. `result[0] >= 0 && result[0] <= 0.02`)"
)


class ConditionError(InputError):
    """A condition outside the subset the grader reads, or not a condition at all."""


def tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ConditionError(f"cannot read {text[pos : pos + 20]!r} in the condition {text!r}: {FORM}.")
        pos = m.end()
        if m.group("result"):
            out.append("result[0]")
        elif m.group("number"):
            out.append(m.group("number"))
        elif m.group("op"):
            out.append(m.group("op"))
        else:
            word = m.group("word")
            if word not in WORDS:
                raise ConditionError(f"the condition {text!r} uses {word!r}, which the grader does not read: {FORM}.")
            out.append(WORDS[word])
    return out


class _Parser:
    def __init__(self, text: str, query: str) -> None:
        self.text, self.query = text, f"({query})"
        self.toks = tokens(text)
        self.i = 0

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise ConditionError(f"the condition {self.text!r} ends too early: {FORM}.")
        self.i += 1
        return tok

    def parse(self) -> str:
        if not self.toks:
            raise ConditionError(f"the condition is empty: {FORM}.")
        expr = self.disjunction()
        if self.peek() is not None:
            raise ConditionError(f"unexpected {self.peek()!r} in the condition {self.text!r}: {FORM}.")
        return expr

    def disjunction(self) -> str:
        expr = self.conjunction()
        while self.peek() == "||":
            self.take()
            expr = f"({expr}) or on() ({self.conjunction()})"
        return expr

    def conjunction(self) -> str:
        expr = self.unary()
        while self.peek() == "&&":
            self.take()
            expr = f"({expr}) and on() ({self.unary()})"
        return expr

    def unary(self) -> str:
        tok = self.peek()
        if tok == "!":
            self.take()
            return f"vector(1) unless on() ({self.unary()})"
        if tok == "(":
            self.take()
            expr = self.disjunction()
            if self.take() != ")":
                raise ConditionError(f"unbalanced parentheses in the condition {self.text!r}.")
            return expr
        return self.comparison()

    def operand(self) -> str:
        tok = self.take()
        if tok == "-":
            number = self.take()
            if not NUMBER.fullmatch(number):
                raise ConditionError(f"'-' must precede a number in the condition {self.text!r}.")
            return f"-{number}"
        if tok == "result[0]" or NUMBER.fullmatch(tok):
            return tok
        raise ConditionError(f"unexpected {tok!r} in the condition {self.text!r}: {FORM}.")

    def comparison(self) -> str:
        left = self.operand()
        op = self.take()
        if op not in COMPARE:
            raise ConditionError(f"expected a comparison after {left!r} in the condition {self.text!r}, got {op!r}.")
        right = self.operand()
        if (left == "result[0]") == (right == "result[0]"):
            raise ConditionError(
                f"each comparison in {self.text!r} must compare result[0] with a number, not {left} {op} {right}."
            )
        if right == "result[0]":
            left, op, right = right, FLIP[op], left
        return f"{self.query} {op} {float(right)!r}"


def to_promql(condition: str, query: str) -> str:
    """PromQL that returns a sample exactly when ``condition`` holds for the result of ``query``."""
    return _Parser(condition, query).parse()
