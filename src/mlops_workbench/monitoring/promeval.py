"""A small PromQL evaluator over scraped ``/metrics`` readings: the alert fallback's answer where no Prometheus runs.

What alert rules on the workbench's metrics use: selectors with ``=``, ``!=``, ``=~``, ``!~``; ``rate``/``increase``
over the readings kept in a :class:`History`; ``sum``/``avg``/``min``/``max``/``count`` ``by``/``without``;
``histogram_quantile``; arithmetic and comparisons of vectors (one-to-one on their labels) and numbers.
Anything else is an :class:`UnsupportedQuery` naming it: a rule the fallback cannot judge is said, never skipped.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NoReturn, TypeVar

from mlops_workbench.errors import InputError
from mlops_workbench.monitoring.rules import seconds
from mlops_workbench.rollout.metrics import histogram_quantile

Labels = tuple[tuple[str, str], ...]
Vector = dict[Labels, float]
Value = Vector | float
NAME = "__name__"
T = TypeVar("T")

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.?\d*(?:e[+-]?\d+)?|\.\d+)|(?P<str>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')"
    r"|(?P<op>=~|!~|!=|==|>=|<=|[-+*/(){}\[\],=<>])|(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*))"
)
_ARITH: dict[str, Callable[[float, float], float]] = {"+": operator.add, "-": operator.sub, "*": operator.mul}
_ARITH["/"] = lambda a, b: a / b if b else (math.nan if a == 0 else math.copysign(math.inf, a))
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}
_AGGREGATE: dict[str, Callable[[list[float]], float]] = {
    "sum": math.fsum,
    "avg": lambda v: math.fsum(v) / len(v),
    "min": min,
    "max": max,
    "count": lambda v: float(len(v)),
}


class UnsupportedQuery(InputError):
    """A PromQL expression outside what the fallback evaluator understands; the message names the part."""


@dataclass
class History:
    """Scraped readings, oldest first: (unix time, series -> value); series are sorted label pairs."""

    readings: list[tuple[float, Vector]] = field(default_factory=list)
    keep: float = 900.0

    def add(self, t: float, series: Vector) -> None:
        self.readings = [r for r in self.readings if r[0] > t - self.keep] + [(t, series)]


def labels(mapping: Mapping[str, str]) -> Labels:
    return tuple(sorted(mapping.items()))


def evaluate(expr: str, history: History) -> Value:
    """The value of ``expr`` at the newest reading of ``history`` (a vector, or a number)."""
    tokens = [(m.lastgroup or "", m.group(m.lastgroup or 0)) for m in _TOKEN.finditer(expr) if m.lastgroup]
    if "".join(t for _, t in tokens) != "".join(expr.split()):
        raise UnsupportedQuery(f"cannot read {expr!r}: the fallback evaluator knows a subset of PromQL")
    parser = _Parser(tokens, history, expr)
    value = parser.expression()
    if parser.pos != len(tokens):
        parser.fail(f"unexpected {tokens[parser.pos][1]!r}")
    return value


class _Parser:
    """Recursive descent over the tokens, evaluating as it goes (the expressions are short)."""

    def __init__(self, tokens: list[tuple[str, str]], history: History, expr: str) -> None:
        self.tokens, self.history, self.expr, self.pos = tokens, history, expr, 0

    def fail(self, what: str) -> NoReturn:
        raise UnsupportedQuery(f"{what} in {self.expr!r}: the fallback evaluator knows a subset of PromQL")

    def peek(self) -> str:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if expected is not None and token != expected:
            self.fail(f"expected {expected!r} but found {token or 'the end'!r}")
        if not token:
            self.fail("unexpected end")
        self.pos += 1
        return token

    def call(self, inner: Callable[[], T]) -> T:
        """``( inner )``: the arguments of a function or aggregation."""
        self.take("(")
        value = inner()
        self.take(")")
        return value

    def expression(self) -> Value:
        left = self.additive()
        if self.peek() in _COMPARE:
            op = self.take()
            if self.peek() == "bool":
                self.fail("'bool' comparisons")
            left = _binary(op, left, self.additive(), compare=True)
        if self.peek() in ("and", "or", "unless"):
            self.fail(f"the '{self.peek()}' operator")
        return left

    def additive(self) -> Value:
        return self.chain(("+", "-"), self.term)

    def term(self) -> Value:
        return self.chain(("*", "/"), self.unary)

    def chain(self, ops: tuple[str, ...], operand: Callable[[], Value]) -> Value:
        """``operand (op operand)*`` for one precedence level, left to right."""
        left = operand()
        while self.peek() in ops:
            op = self.take()
            left = _binary(op, left, operand(), compare=False)
        return left

    def unary(self) -> Value:
        if self.peek() == "-":
            self.take()
            return _binary("*", -1.0, self.unary(), compare=False)
        return self.primary()

    def primary(self) -> Value:
        kind, token = self.tokens[self.pos] if self.pos < len(self.tokens) else ("", "")
        if kind == "num":
            return float(self.take())
        if token == "(":
            return self.call(self.expression)
        if token in _AGGREGATE:
            return self.aggregate()
        if token in ("rate", "increase"):
            self.take()
            name, matchers, window = self.call(self.range_selector)
            return _range(self.history, name, matchers, window, per_second=token == "rate")
        if token == "histogram_quantile":
            self.take()
            q, buckets = self.call(self.pair)
            return _quantile(q, buckets) if isinstance(q, float) else self.fail("a quantile that is not a number")
        if kind == "name" and self.pos + 1 < len(self.tokens) and self.tokens[self.pos + 1][1] == "(":
            self.fail(f"the function {token!r}")
        if kind == "name" or token == "{":
            name, matchers = self.selector()
            if self.peek() == "[":
                self.fail("a range vector outside rate() or increase()")
            latest = self.history.readings[-1][1] if self.history.readings else {}
            return {k: v for k, v in latest.items() if _matches(k, name, matchers)}
        self.fail(f"{token or 'the end'!r}")

    def aggregate(self) -> Vector:
        op = self.take()
        grouping = self.grouping()
        inner = self.call(self.expression)
        grouping = grouping or self.grouping()
        if isinstance(inner, float):
            inner = {(): inner}
        by, names = grouping or ("by", [])
        groups: dict[Labels, list[float]] = {}
        for key, value in inner.items():
            kept = tuple((k, v) for k, v in key if (k in names) == (by == "by") and k != NAME)
            groups.setdefault(kept, []).append(value)
        return {key: _AGGREGATE[op](values) for key, values in groups.items()}

    def grouping(self) -> tuple[str, list[str]] | None:
        if self.peek() not in ("by", "without"):
            return None
        by = self.take()
        return by, self.call(lambda: self.listing(")", self.take))

    def listing(self, close: str, item: Callable[[], T]) -> list[T]:
        """Comma-separated ``item``s up to ``close`` (not taken)."""
        found: list[T] = []
        while self.peek() not in (close, ""):
            found.append(item())
            if self.peek() == ",":
                self.take()
        return found

    def matcher(self) -> tuple[str, str, str]:
        label, op, value = self.take(), self.take(), self.take()
        if op not in ("=", "!=", "=~", "!~"):
            self.fail(f"the matcher operator {op!r}")
        return label, op, value[1:-1].encode().decode("unicode_escape")

    def selector(self) -> tuple[str | None, list[tuple[str, str, str]]]:
        name = self.take() if self.tokens[self.pos][0] == "name" else None
        matchers: list[tuple[str, str, str]] = []
        if self.peek() == "{":
            self.take()
            matchers = self.listing("}", self.matcher)
            self.take("}")
        return name, matchers

    def pair(self) -> tuple[Value, Value]:
        first = self.expression()
        self.take(",")
        return first, self.expression()

    def range_selector(self) -> tuple[str | None, list[tuple[str, str, str]], float]:
        name, matchers = self.selector()
        self.take("[")
        text = "".join(self.listing("]", self.take))
        self.take("]")
        try:
            return name, matchers, seconds(text)
        except ValueError as err:
            raise UnsupportedQuery(str(err)) from None


def _matches(key: Labels, name: str | None, matchers: list[tuple[str, str, str]]) -> bool:
    found = dict(key)
    if name is not None and found.get(NAME) != name:
        return False
    for label, op, value in matchers:
        have = found.get(label, "")
        hit = have == value if op in ("=", "!=") else re.fullmatch(value, have) is not None
        if hit != (op in ("=", "=~")):
            return False
    return True


def _range(
    history: History, name: str | None, matchers: list[tuple[str, str, str]], window: float, per_second: bool
) -> Vector:
    """``increase`` (or ``rate``) of each counter over the readings within ``window`` (resets counted as PromQL)."""
    if not history.readings:
        return {}
    end = history.readings[-1][0]
    points: dict[Labels, list[tuple[float, float]]] = {}
    for t, series in history.readings:
        if t >= end - window:
            for key, value in series.items():
                if _matches(key, name, matchers):
                    points.setdefault(_strip(key), []).append((t, value))
    out: Vector = {}
    for key, pts in points.items():
        if len(pts) < 2:
            continue
        grown = sum(b if b < a else b - a for (_, a), (_, b) in zip(pts, pts[1:], strict=False))
        out[key] = grown / (pts[-1][0] - pts[0][0]) if per_second else grown
    return out


def _quantile(q: float, buckets: Value) -> Vector:
    if isinstance(buckets, float):
        return {}
    grouped: dict[Labels, dict[float, float]] = {}
    for key, value in buckets.items():
        le = dict(key).get("le")
        if le is not None:
            rest = tuple(kv for kv in key if kv[0] not in ("le", NAME))
            grouped.setdefault(rest, {})[float(le)] = value
    out: Vector = {}
    for key, les in grouped.items():
        found = histogram_quantile(q, les)
        if found is not None:
            out[key] = found
    return out


def _strip(key: Labels) -> Labels:
    return tuple(kv for kv in key if kv[0] != NAME)


def _binary(op: str, left: Value, right: Value, compare: bool) -> Value:
    """``left op right``: arithmetic drops the metric name; a comparison keeps the vector's samples where it holds
    (two vectors match one-to-one on their labels but the name)."""
    if isinstance(left, float) and isinstance(right, float):
        return float(_COMPARE[op](left, right)) if compare else _ARITH[op](left, right)
    pairs: list[tuple[Labels, float, float, float]]  # labels, left operand, right operand, the vector's value
    if isinstance(left, float):
        assert isinstance(right, dict)
        pairs = [(k, left, v, v) for k, v in right.items()]
    elif isinstance(right, float):
        pairs = [(k, v, right, v) for k, v in left.items()]
    else:
        plain = {_strip(k): v for k, v in right.items()}
        pairs = [(k, v, plain[_strip(k)], v) for k, v in left.items() if _strip(k) in plain]
    if compare:
        return {k: kept for k, a, b, kept in pairs if _COMPARE[op](a, b)}
    return {_strip(k): _ARITH[op](a, b) for k, a, b, _ in pairs}
