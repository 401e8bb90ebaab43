"""Filter expressions over the source table's columns (Qt-free): ``snr > 10 and status == "matched"``.

:func:`compile_filter` turns the text of the filter box into a :class:`CompiledFilter`, a
function of the columns that returns one boolean per row, computed with numpy over whole
columns. The text is parsed with Python's :mod:`ast` and walked with an allow-list: only
comparisons (``== != < <= > >=``, chained ``0.2 < score < 0.8``), ``in`` / ``not in`` a list,
``and`` / ``or`` / ``not``, parentheses, column names, numbers, quoted strings, ``none`` and
``true`` / ``false`` are accepted; nothing is ever evaluated by Python itself. Column names and
keywords are case-insensitive; a single ``=`` means ``==``; a bare word that is not a column
(``status == matched``) is a string.

A filter that is one plain word keeps the old quick search, only where it is unambiguous: a
number finds that id; a word that is exactly a value of one text column (``matched``,
``real``) means ``column == word`` (so ``matched`` never finds ``unmatched``). Anything else
raises :class:`FilterError` with a plain-words message.

``none`` is a missing value: an empty label, a NaN number (``score == none`` finds rows
that have no recomputed score) or a masked cell (``diaSourceId == none``: unmatched
detections). Integer columns compare exactly with integers (64-bit ids lose digits as floats).
A boolean column (a pixel flag) is a condition by itself: ``pixelFlags_sat``,
``not pixelFlags_edge and snr > 5``.
"""

from __future__ import annotations

import ast
import difflib
import io
import re
import tokenize
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

Columns = Mapping[str, np.ndarray]

#: Words with a meaning of their own (any case).
KEYWORDS = {"and", "or", "not", "in", "none", "null", "true", "false"}

_EXAMPLES = 'snr > 10, status == "matched" or score < 0.5 and label == none'


class FilterError(ValueError):
    """A filter the user typed cannot be used; the message says why in plain words."""


@dataclass(frozen=True)
class CompiledFilter:
    """A checked filter expression: call it with the columns to get the rows it keeps."""

    text: str
    columns: frozenset[str]  #: the (canonical) column names it reads
    _fn: Callable[[Columns], np.ndarray]

    def __call__(self, columns: Columns) -> np.ndarray:
        """Boolean array, one per row: True where the row passes the filter."""
        lookup = _lookup(columns)
        n = _length(columns)
        out = np.asarray(self._fn(lookup), dtype=bool)
        return np.broadcast_to(out, (n,)).copy() if out.ndim == 0 else out


def _length(columns: Columns) -> int:
    for v in columns.values():
        return len(v)
    return 0


def _lookup(columns: Columns) -> dict[str, np.ndarray]:
    return {str(k).lower(): v for k, v in columns.items()}


def _is_text(values: np.ndarray) -> bool:
    return np.asarray(values).dtype.kind in "OUS"


def _is_flag(values: np.ndarray) -> bool:
    return np.asarray(values).dtype.kind == "b"


def _flag(values) -> np.ndarray:
    """A boolean column as a condition (a masked cell is false)."""
    return np.asarray(np.ma.getdata(values), dtype=bool) & ~np.ma.getmaskarray(values)


def compile_filter(text: str, columns: Columns) -> CompiledFilter | None:
    """Compile ``text`` against ``columns`` (name -> array; names are case-insensitive).

    Returns None for an empty filter (every row passes). Raises :class:`FilterError` with a
    plain-words message for anything it cannot use (unknown column, text compared with a
    number, a syntax error, an ambiguous plain word).
    """
    text = (text or "").strip()
    if not text:
        return None
    lookup = _lookup(columns)
    word = _plain_word(text, lookup)
    if word is not None:
        return word
    source = _normalise(text)
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError:
        raise FilterError(f"cannot read the filter {text!r}; write comparisons such as "
                          f"{_EXAMPLES}") from None
    used: set[str] = set()
    fn = _Compiler(lookup, used).boolean(tree.body)
    return CompiledFilter(text=text, columns=frozenset(used), _fn=fn)


def filter_rows(text: str, columns: Columns) -> np.ndarray:
    """Boolean mask of the rows ``text`` keeps (all True for an empty filter)."""
    flt = compile_filter(text, columns)
    return np.ones(_length(columns), dtype=bool) if flt is None else flt(columns)


# -- plain words -------------------------------------------------------------------------


def _plain_word(text: str, lookup: dict[str, np.ndarray]) -> CompiledFilter | None:
    """The unambiguous meaning of a filter that is a single word, or None if it is not one."""
    if not re.fullmatch(r"[\w.+-]+", text) or text.lower() in KEYWORDS:
        return None
    if text.lower() in lookup:
        name = text.lower()
        if _is_flag(lookup[name]):
            return CompiledFilter(text, frozenset({name}), lambda cols: _flag(cols[name]))
        raise _column_alone(text, lookup[name])
    if re.fullmatch(r"[+-]?\d+", text) and "id" in lookup:
        value = int(text)
        return CompiledFilter(text, frozenset({"id"}),
                              lambda cols: np.asarray(cols["id"]) == value)
    if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text):
        raise FilterError(f"a number alone is not a filter; e.g. snr > {text} or id == {text}")
    word = text.lower()
    hits = [name for name, values in lookup.items()
            if _is_text(values) and word in {str(v).lower() for v in values if v is not None}]
    if len(hits) == 1:
        name = hits[0]
        return CompiledFilter(text, frozenset({name}),
                              lambda cols: _text_equal(cols[name], word))
    if len(hits) > 1:
        raise FilterError(f"{text!r} is a value of {' and of '.join(hits)}; say which, e.g. "
                          f'{hits[0]} == "{text}"')
    raise FilterError(f"no column holds {text!r}; write comparisons such as {_EXAMPLES}")


# -- parsing -------------------------------------------------------------------------------


def _normalise(text: str) -> str:
    """Python-parsable text: keywords lower-cased, ``=`` -> ``==``, ``&&``/``||`` -> and/or."""
    text = text.replace("&&", " and ").replace("||", " or ")
    out = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return text  # ast.parse reports it
    for tok in tokens:
        kind, value = tok.type, tok.string
        if kind == tokenize.NAME and value.lower() in KEYWORDS:
            value = {"none": "None", "null": "None", "true": "True",
                     "false": "False"}.get(value.lower(), value.lower())
        elif kind == tokenize.OP and value == "=":
            value = "=="
        elif kind == tokenize.OP and value == "!":
            value = "not"
        out.append((kind, value))
    try:
        return tokenize.untokenize(out).strip()
    except ValueError:
        return text


_CMP = {
    ast.Eq: np.equal, ast.NotEq: np.not_equal, ast.Lt: np.less, ast.LtE: np.less_equal,
    ast.Gt: np.greater, ast.GtE: np.greater_equal,
}
_CMP_WORDS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


@dataclass(frozen=True)
class _Column:
    name: str
    text: bool


@dataclass(frozen=True)
class _Literal:
    value: object  # float, str, bool or None
    bare: bool = False  # an unquoted word (a string, or a mistyped column)


class _Compiler:
    """Walks the parsed expression; every node type not handled here is refused."""

    def __init__(self, lookup: dict[str, np.ndarray], used: set[str]) -> None:
        self.lookup = lookup
        self.used = used

    def boolean(self, node: ast.AST) -> Callable[[dict], np.ndarray]:
        if isinstance(node, ast.BoolOp):
            parts = [self.boolean(v) for v in node.values]
            op = np.logical_and if isinstance(node.op, ast.And) else np.logical_or

            def combine(cols, parts=parts, op=op):
                out = parts[0](cols)
                for p in parts[1:]:
                    out = op(out, p(cols))
                return out

            return combine
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self.boolean(node.operand)
            return lambda cols: np.logical_not(inner(cols))
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Name | ast.Constant | ast.UnaryOp):
            what = self.operand(node)
            if isinstance(what, _Literal) and what.bare:
                raise self.unknown_column(str(what.value))
            if isinstance(what, _Column):
                if _is_flag(self.lookup[what.name]):
                    return lambda cols, name=what.name: _flag(cols[name])
                raise _column_alone(what.name, self.lookup[what.name])
            if isinstance(what.value, bool):
                return lambda cols, v=what.value: np.bool_(v)
            raise FilterError(f"{_show(what.value)} alone is not a condition; "
                              f"write comparisons such as {_EXAMPLES}")
        raise FilterError(f"the filter may only hold comparisons joined by and / or / not "
                          f"(e.g. {_EXAMPLES}); {_describe(node)} is not allowed")

    def operand(self, node: ast.AST) -> _Column | _Literal:
        if isinstance(node, ast.Name):
            name = node.id.lower()
            if name in self.lookup:
                self.used.add(name)
                return _Column(name, _is_text(self.lookup[name]))
            return _Literal(node.id, bare=True)  # a bare word: a string
        if isinstance(node, ast.Constant) and (node.value is None
                                               or isinstance(node.value, bool | int | float | str)):
            v = node.value
            # integers stay integers: ids compare exactly (float64 holds 15-16 digits)
            return _Literal(float(v) if isinstance(v, float) else v)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            inner = self.operand(node.operand)
            if isinstance(inner, _Literal) and isinstance(inner.value, int | float) \
                    and not isinstance(inner.value, bool):
                return _Literal(-inner.value if isinstance(node.op, ast.USub) else inner.value)
        raise FilterError(f"{_describe(node)} is not a column, a number or a quoted text "
                          f"(e.g. {_EXAMPLES})")

    def compare(self, node: ast.Compare) -> Callable[[dict], np.ndarray]:
        parts = []
        left = node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            parts.append(self.one_comparison(left, op, right))
            left = right

        def chain(cols, parts=parts):
            out = parts[0](cols)
            for p in parts[1:]:
                out = np.logical_and(out, p(cols))
            return out

        return chain

    def one_comparison(self, left: ast.AST, op: ast.cmpop, right: ast.AST):
        if isinstance(op, ast.In | ast.NotIn):
            return self.membership(left, op, right)
        if type(op) not in _CMP:
            raise FilterError(f"{_describe(op)} cannot compare values; use == != < <= > >= or in")
        a, b = self.operand(left), self.operand(right)
        if isinstance(a, _Literal) and isinstance(b, _Column):
            a, b = b, a
            op = {ast.Lt: ast.Gt(), ast.LtE: ast.GtE(), ast.Gt: ast.Lt(),
                  ast.GtE: ast.LtE()}.get(type(op), op)
        if not isinstance(a, _Column):
            for lit in (a, b):
                if isinstance(lit, _Literal) and lit.bare:
                    raise self.unknown_column(str(lit.value))
            raise FilterError(f"compare a column with a value, e.g. {_EXAMPLES}: "
                              f"{_show(a.value)} and {_show(b.value)} are both values")
        if isinstance(b, _Column):
            if a.text != b.text:
                raise FilterError(f"{a.name} holds {'text' if a.text else 'numbers'} and "
                                  f"{b.name} {'text' if b.text else 'numbers'}: they do not compare")
            fn = _CMP[type(op)]
            return lambda cols: _safe(fn, cols[a.name], cols[b.name], a.text)
        return self.against_value(a, op, b.value)

    def unknown_column(self, word: str) -> FilterError:
        close = suggest_column(word, self.lookup)
        hint = f" (did you mean {close}?)" if close else ""
        return FilterError(f"there is no column {word!r}{hint}; the columns are "
                           f"{', '.join(sorted(self.lookup))}")

    def against_value(self, col: _Column, op: ast.cmpop, value: object):
        name = col.name
        if value is None:
            if type(op) not in (ast.Eq, ast.NotEq):
                raise FilterError(f"none is a missing value: use {name} == none or {name} != none")
            negate = isinstance(op, ast.NotEq)
            return lambda cols: _missing(cols[name]) ^ negate
        if col.text:
            if not isinstance(value, str):
                raise FilterError(f"{name} holds text: compare it with a quoted word, e.g. "
                                  f'{name} == "{_example_text(self.lookup[name])}"')
            if type(op) not in (ast.Eq, ast.NotEq):
                raise FilterError(f"{name} holds text: use == or != (or in), not "
                                  f"{_CMP_WORDS[type(op)]}")
            word = value.lower()
            negate = isinstance(op, ast.NotEq)
            return lambda cols: _text_equal(cols[name], word) ^ negate
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, int | float):
            raise FilterError(f"{name} holds numbers: compare it with a number, e.g. "
                              f"{name} > 10 (not {_show(value)})")
        fn = _CMP[type(op)]
        number = value
        return lambda cols: _number_compare(fn, cols[name], number)

    def membership(self, left: ast.AST, op: ast.cmpop, right: ast.AST):
        col = self.operand(left)
        if isinstance(col, _Literal) and col.bare:
            raise self.unknown_column(str(col.value))
        if not isinstance(col, _Column):
            raise FilterError(f"write 'column in (a, b)', e.g. status in (\"matched\", \"target\"); "
                              f"{_show(col.value)} is not a column")
        if isinstance(right, ast.Tuple | ast.List | ast.Set):
            items = [self.operand(e) for e in right.elts]
        else:
            items = [self.operand(right)]
        if any(isinstance(i, _Column) for i in items):
            raise FilterError("the list after 'in' must hold values, not columns")
        tests = [self.against_value(col, ast.Eq(), i.value) for i in items]
        negate = isinstance(op, ast.NotIn)

        def member(cols, tests=tests):
            out = np.zeros(len(cols[col.name]), dtype=bool)
            for t in tests:
                out |= t(cols)
            return ~out if negate else out

        return member


def _column_alone(name: str, values) -> FilterError:
    example = f'{name} == "{_example_text(values)}"' if _is_text(values) else f"{name} > 10"
    return FilterError(f"{name!r} alone is not a condition: compare it, e.g. {example} or "
                       f"{name} == none")


def _missing(values) -> np.ndarray:
    if np.ma.isMaskedArray(values):
        return np.ma.getmaskarray(values) | _missing(np.ma.getdata(values))
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        return np.isnan(arr)
    if arr.dtype.kind == "O":
        return np.asarray(np.equal(arr, None) | np.equal(arr, ""), dtype=bool)
    if arr.dtype.kind in "US":
        return arr == arr.dtype.type("")
    return np.zeros(arr.shape, dtype=bool)


def _text_equal(values, word: str) -> np.ndarray:
    """Case-insensitive equality of a text column with ``word`` (missing values never equal)."""
    arr = np.asarray(values)
    out = np.zeros(arr.shape, dtype=bool)
    # compare the few distinct values, then find them (object columns: no per-row str())
    for value in set(arr.tolist()):
        if value is not None and str(value).lower() == word:
            out |= np.asarray(arr == value, dtype=bool)
    return out


#: Integers an int64 column compares with exactly.
_INT64 = (-(2**63), 2**63 - 1)


def _number_compare(fn, values, value: int | float) -> np.ndarray:
    """``fn(column, value)`` per row; a missing cell (NaN, masked) is never true."""
    data = np.ma.getdata(values)
    integral = isinstance(value, int) or float(value).is_integer()
    if data.dtype.kind in "iub" and integral and _INT64[0] <= value <= _INT64[1]:
        out = fn(data.astype(np.int64, copy=False), int(value))  # exact for 64-bit ids
    else:
        with np.errstate(invalid="ignore"):
            out = fn(np.asarray(data, dtype=np.float64), float(value))
    return np.asarray(out, dtype=bool) & ~np.ma.getmaskarray(values)


def _numbers(values) -> np.ndarray:
    """A column as float64, NaN where a cell is masked."""
    return np.ma.asarray(values, dtype=np.float64).filled(np.nan) \
        if np.ma.isMaskedArray(values) else np.asarray(values, dtype=np.float64)


def _safe(fn, a, b, text: bool) -> np.ndarray:
    if text:
        sa = np.char.lower(np.asarray(a).astype(str))
        sb = np.char.lower(np.asarray(b).astype(str))
        return np.asarray(fn(sa, sb), dtype=bool)
    with np.errstate(invalid="ignore"):
        return fn(_numbers(a), _numbers(b))


def _example_text(values) -> str:
    for v in np.asarray(values):
        if v is not None and str(v):
            return str(v)
    return "text"


def _show(value: object) -> str:
    return "none" if value is None else repr(value) if isinstance(value, str) else f"{value:g}" \
        if isinstance(value, float) else str(value)


def _describe(node: ast.AST) -> str:
    try:
        return repr(ast.unparse(node))
    except Exception:  # an operator node has no text of its own
        return type(node).__name__


def suggest_column(name: str, names: Iterable[str]) -> str | None:
    """The known column name closest to ``name`` (a typo), or None."""
    close = difflib.get_close_matches(name.lower(), [n.lower() for n in names], n=1)
    return close[0] if close else None


__all__ = ["CompiledFilter", "FilterError", "compile_filter", "filter_rows", "suggest_column"]
