"""A filter as a dict (the JSON shape of doc/protocol.md, "Filters") into
shoal.proto's Filter message.  Errors name the path of the offending part,
as the server's do ("filter.must[1].range.gt: not a number")."""

import numpy as np

from . import shoal_pb2 as pb
from .errors import InvalidArgument

_RANGE_KEYS = ("gt", "gte", "lt", "lte")


def _value(v, path):
    out = pb.Value()
    if isinstance(v, (bool, np.bool_)):
        out.bool_value = bool(v)
    elif isinstance(v, (int, np.integer)):
        if not -(1 << 63) <= int(v) < (1 << 63):
            raise InvalidArgument("%s: %d is out of the 64-bit range" % (path, v))
        out.int_value = int(v)
    elif isinstance(v, (float, np.floating)):
        out.double_value = float(v)
    elif isinstance(v, str):
        out.string_value = v
    else:
        raise InvalidArgument("%s: not a string, integer, number or boolean" % path)
    return out


def _values(vs, path):
    if not isinstance(vs, (list, tuple)):
        raise InvalidArgument("%s: not a list" % path)
    return [_value(v, "%s[%d]" % (path, i)) for i, v in enumerate(vs)]


def _range(r, out, path):
    if not isinstance(r, dict) or not r:
        raise InvalidArgument("%s: not an object of bounds" % path)
    for k, v in r.items():
        if k not in _RANGE_KEYS:
            raise InvalidArgument("%s.%s: unknown bound" % (path, k))
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)):
            raise InvalidArgument("%s.%s: not a number" % (path, k))
        getattr(out, k).value = float(v)


def _match(m, c, path):
    if not isinstance(m, dict) or len(m) != 1:
        raise InvalidArgument("%s: one of value, any, except, text" % path)
    (k, v), = m.items()
    if k == "value":
        c.match.CopyFrom(_value(v, path + ".value"))
    elif k == "any":
        c.any.values.extend(_values(v, path + ".any"))
    elif k == "except":
        getattr(c, "except").values.extend(_values(v, path + ".except"))
    elif k == "text":
        if not isinstance(v, str):
            raise InvalidArgument("%s.text: not a string" % path)
        c.text = v
    else:
        raise InvalidArgument("%s.%s: unknown match" % (path, k))


_FIELD = ("match", "range", "values_count", "is_empty", "is_null")
_ONES = ("is_empty", "is_null", "has_id", "nested", "filter")
_FILTER_KEYS = ("must", "should", "must_not", "min_should")


def _key(k, path):
    if not isinstance(k, str) or not k:
        raise InvalidArgument("%s: not a payload path" % path)
    return k


def _field(d, path):
    """{"key": K, one of match, range, values_count, is_empty: true,
    is_null: true} (the server's shapes, src/net/japi.c)."""
    unknown = set(d) - {"key"} - set(_FIELD)
    if unknown:
        raise InvalidArgument("%s.%s: unknown field" % (path, sorted(unknown)[0]))
    c = pb.Condition(key=_key(d["key"], path + ".key"))
    kinds = [k for k in _FIELD if k in d]
    if len(kinds) != 1 or (kinds[0] in ("is_empty", "is_null") and d[kinds[0]] is not True):
        raise InvalidArgument("%s: needs exactly one of match, range, values_count, "
                              "is_empty: true and is_null: true" % path)
    kind, v, at = kinds[0], d[kinds[0]], "%s.%s" % (path, kinds[0])
    if kind == "match":
        _match(v, c, at)
    elif kind == "range":
        _range(v, c.range, at)
    elif kind == "values_count":
        _range(v, c.values_count, at)
    else:
        setattr(c, kind, True)
    return c


def _condition(d, path):
    if not isinstance(d, dict):
        raise InvalidArgument("%s: not an object" % path)
    if "key" in d:
        return _field(d, path)
    if d and set(d) <= set(_FILTER_KEYS):  # a filter itself (Qdrant's form)
        return pb.Condition(filter=to_proto(d, path))
    kinds = [k for k in _ONES if k in d]
    if len(kinds) != 1 or len(d) != 1:
        raise InvalidArgument("%s: a field condition (with key), or exactly one of "
                              "is_empty, is_null, has_id, nested, filter" % path)
    kind = kinds[0]
    v, at = d[kind], "%s.%s" % (path, kind)
    c = pb.Condition()
    if kind in ("is_empty", "is_null"):  # {"is_empty": {"key": K}}
        if not isinstance(v, dict) or set(v) != {"key"}:
            raise InvalidArgument("%s: {\"key\": PATH} wanted" % at)
        c.key = _key(v["key"], at + ".key")
        setattr(c, kind, True)
    elif kind == "has_id":
        if not isinstance(v, (list, tuple)) or not v:
            raise InvalidArgument("%s: a non-empty list of point ids" % at)
        for i, x in enumerate(v):
            if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)) or \
                    not 0 <= int(x) < (1 << 64):
                raise InvalidArgument("%s[%d]: not a point id" % (at, i))
        c.has_id.ids.extend(int(x) for x in v)
    elif kind == "nested":  # {"nested": {"key": K, "filter": F}}
        if not isinstance(v, dict) or set(v) != {"key", "filter"}:
            raise InvalidArgument("%s: {\"key\": PATH, \"filter\": FILTER} wanted" % at)
        c.key = _key(v["key"], at + ".key")
        c.nested.CopyFrom(to_proto(v["filter"], at + ".filter"))
    else:
        c.filter.CopyFrom(to_proto(v, at))
    return c


def to_proto(f, path="filter"):
    """The Filter message of f (a dict), raising InvalidArgument."""
    if not isinstance(f, dict):
        raise InvalidArgument("%s: not an object" % path)
    out = pb.Filter()
    for k, v in f.items():
        if k in ("must", "should", "must_not"):
            if not isinstance(v, (list, tuple)):
                raise InvalidArgument("%s.%s: not a list" % (path, k))
            getattr(out, k).extend(
                _condition(c, "%s.%s[%d]" % (path, k, i)) for i, c in enumerate(v))
        elif k == "min_should":
            if not isinstance(v, dict) or set(v) - {"conditions", "min_count"}:
                raise InvalidArgument("%s.min_should: {conditions, min_count}" % path)
            out.min_should.conditions.extend(
                _condition(c, "%s.min_should.conditions[%d]" % (path, i))
                for i, c in enumerate(v.get("conditions", [])))
            m = v.get("min_count", 1)
            if isinstance(m, bool) or not isinstance(m, int) or m < 0:
                raise InvalidArgument("%s.min_should.min_count: not a count" % path)
            out.min_should.min_count = m
        else:
            raise InvalidArgument("%s.%s: unknown field" % (path, k))
    return out
