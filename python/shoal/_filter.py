"""A filter as a dict (the JSON shape of doc/protocol.md, "Filters") into
shoal.proto's Filter message.  Errors name the path of the offending part,
as the server's do ("filter.must[1].range.gt: not a number")."""

from . import shoal_pb2 as pb
from .errors import InvalidArgument

_RANGE_KEYS = ("gt", "gte", "lt", "lte")


def _value(v, path):
    out = pb.Value()
    if isinstance(v, bool):
        out.bool_value = v
    elif isinstance(v, int):
        out.int_value = v
    elif isinstance(v, float):
        out.double_value = v
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
        if isinstance(v, bool) or not isinstance(v, (int, float)):
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


def _condition(d, path):
    if not isinstance(d, dict):
        raise InvalidArgument("%s: not an object" % path)
    c = pb.Condition()
    kinds = [k for k in d if k != "key"]
    if len(kinds) != 1:
        raise InvalidArgument(
            "%s: one of match, range, filter, has_id, is_empty, is_null, "
            "values_count, nested" % path)
    kind = kinds[0]
    key = d.get("key")
    if key is not None:
        if not isinstance(key, str):
            raise InvalidArgument("%s.key: not a string" % path)
        c.key = key
    v, at = d[kind], "%s.%s" % (path, kind)
    if kind == "match":
        _match(v, c, at)
    elif kind == "range":
        _range(v, c.range, at)
    elif kind == "values_count":
        _range(v, c.values_count, at)
    elif kind == "filter":
        c.filter.CopyFrom(to_proto(v, at))
    elif kind == "nested":
        c.nested.CopyFrom(to_proto(v, at))
    elif kind == "has_id":
        if not isinstance(v, (list, tuple)) or not all(
                isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in v):
            raise InvalidArgument("%s: not a list of point ids" % at)
        c.has_id.ids.extend(v)
    elif kind in ("is_empty", "is_null"):
        setattr(c, kind, True)
    else:
        raise InvalidArgument("%s: unknown condition" % at)
    if kind not in ("filter", "has_id") and key is None:
        raise InvalidArgument("%s.key: missing" % path)
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
            out.min_should.min_count = int(v.get("min_count", 1))
        else:
            raise InvalidArgument("%s.%s: unknown field" % (path, k))
    return out
