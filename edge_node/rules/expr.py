"""Rule expressions: a small, safe subset of Python evaluated over a rule's context.

Allowed: literals, names from the context, comparisons (incl. `in`), `and`/`or`/`not`,
arithmetic, `x if c else y`, lists/tuples/dicts, attribute access (no `_` names) and
subscripts, and calls of the functions the engine provides (`latest`, `latest_ts`, `limits`,
`recipe` (of a product), `recipe_by_id`, `coalesce`, `abs`, `min`, `max`, `round`, `int`,
`float`, `str`, `len`, `bool`, `now`; edge_node/rules/context.py). Nothing is
compiled or passed to `eval`: the tree is walked here, so an expression cannot reach Python.

Missing data never fires a rule: an attribute or item of None is None, arithmetic with None is
None, and an ordering comparison with None is False (`==`/`!=` compare normally).

Templates: in action fields, a string starting with `=` is an expression (`"=value * 2"`);
any other string is literal text.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

from factory_common.errors import EdgeError

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: b is not None and a in b,
    ast.NotIn: lambda a, b: b is None or a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}
_NONE_SAFE = (ast.Eq, ast.NotEq, ast.Is, ast.IsNot, ast.In, ast.NotIn)
_NODES = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
    ast.BinOp, ast.Compare, ast.IfExp, ast.Call, ast.Name, ast.Load, ast.Constant,
    ast.Attribute, ast.Subscript, ast.List, ast.Tuple, ast.Dict, *_BINARY, *_COMPARE,
)  # fmt: skip
MAX_LENGTH = 2000


class ExprError(EdgeError, ValueError):
    """An expression that cannot be parsed, or failed while evaluated (says which and why)."""


class Expr:
    """One parsed expression; `names` are the context names and functions it uses."""

    def __init__(self, text: str, known: frozenset[str] | None = None) -> None:
        self.text = text
        if len(text) > MAX_LENGTH:
            raise ExprError(f"expression longer than {MAX_LENGTH} characters")
        try:
            self._tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise ExprError(f"not a valid expression {text!r}: {exc.msg}") from None
        self.names: set[str] = set()
        for node in ast.walk(self._tree):
            self._check(node)
        unknown = self.names - known if known is not None else set()
        if unknown:
            raise ExprError(
                f"unknown name(s) {sorted(unknown)} in {text!r}; known: {sorted(known or ())}"
            )

    def _check(self, node: ast.AST) -> None:
        if not isinstance(node, _NODES):
            raise ExprError(f"{type(node).__name__} is not allowed in {self.text!r}")
        if isinstance(node, ast.Name):
            self.names.add(node.id)
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ExprError(f"attribute {node.attr!r} is not allowed in {self.text!r}")
        elif isinstance(node, ast.Call) and (node.keywords or not isinstance(node.func, ast.Name)):
            raise ExprError(f"call only functions by name, without keywords, in {self.text!r}")

    def __call__(self, context: Mapping[str, Any]) -> Any:
        try:
            return _eval(self._tree.body, context)
        except ExprError:
            raise
        except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
            raise ExprError(f"{self.text!r}: {type(exc).__name__}: {exc}") from None

    def __repr__(self) -> str:
        return f"Expr({self.text!r})"


def _eval(node: ast.AST, ctx: Mapping[str, Any]) -> Any:
    match node:
        case ast.Constant(value=value):
            return value
        case ast.Name(id=name):
            if name not in ctx:
                raise ExprError(f"unknown name {name!r}")
            return ctx[name]
        case ast.BoolOp(op=op, values=values):
            result: Any = None
            for item in values:
                result = _eval(item, ctx)
                if bool(result) is isinstance(op, ast.Or):
                    return result
            return result
        case ast.UnaryOp(op=op, operand=operand):
            value = _eval(operand, ctx)
            if isinstance(op, ast.Not):
                return not value
            return None if value is None else (-value if isinstance(op, ast.USub) else +value)
        case ast.BinOp(left=left, op=op, right=right):
            a, b = _eval(left, ctx), _eval(right, ctx)
            return None if a is None or b is None else _BINARY[type(op)](a, b)
        case ast.Compare(left=left, ops=ops, comparators=comparators):
            return _compare(_eval(left, ctx), ops, comparators, ctx)
        case ast.IfExp(test=test, body=body, orelse=orelse):
            return _eval(body, ctx) if _eval(test, ctx) else _eval(orelse, ctx)
        case ast.Call(func=ast.Name(id=name), args=args):
            function = ctx.get(name)
            if not callable(function):
                raise ExprError(f"{name!r} is not a function")
            return function(*(_eval(a, ctx) for a in args))
        case ast.Attribute(value=value, attr=attr):
            return _member(_eval(value, ctx), attr)
        case ast.Subscript(value=value, slice=index):
            container = _eval(value, ctx)
            return None if container is None else container[_eval(index, ctx)]
        case ast.List(elts=items) | ast.Tuple(elts=items):
            return [_eval(i, ctx) for i in items]
        case ast.Dict(keys=keys, values=values):
            return {_eval(k, ctx): _eval(v, ctx) for k, v in zip(keys, values, strict=True) if k}
    raise ExprError(f"{type(node).__name__} is not allowed")


def _compare(left: Any, ops: list[ast.cmpop], comparators: list[ast.expr], ctx: Any) -> bool:
    for op, item in zip(ops, comparators, strict=True):
        right = _eval(item, ctx)
        if (left is None or right is None) and not isinstance(op, _NONE_SAFE):
            return False
        if not _COMPARE[type(op)](left, right):
            return False
        left = right
    return True


def _member(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


# ---------------------------------------------------------------- templates


def compile_template(value: Any, known: frozenset[str] | None = None) -> Any:
    """Replace every `=expr` string inside a YAML value (dicts, lists) by an Expr."""
    if isinstance(value, str) and value.startswith("="):
        return Expr(value[1:], known)
    if isinstance(value, dict):
        return {k: compile_template(v, known) for k, v in value.items()}
    if isinstance(value, list):
        return [compile_template(v, known) for v in value]
    return value


def render(template: Any, context: Mapping[str, Any]) -> Any:
    """Evaluate a compiled template into plain values."""
    if isinstance(template, Expr):
        return template(context)
    if isinstance(template, dict):
        return {k: render(v, context) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, context) for v in template]
    return template
