"""`evolve(value, **changes)`: `dataclasses.replace` for the frozen values copied on every
tick (a `Position`, its `Leg`s and `LegOrder`s, an `Intent`), about 10x cheaper.

    moved = evolve(position, best_price=mark)      # == dataclasses.replace(position, ...)

`dataclasses.replace` reads the class's fields, builds a keyword dict and runs `__init__`,
which sets every field through `object.__setattr__` (the class is frozen): ~106,000
instructions for the 36 fields of a Position, paid several times per event. The copy made
here fills the slots of a new instance directly, through code generated once per class (as
`dataclasses` generates `__init__`): ~9,400. The result is the same value: same class, same
field values, still frozen, equal and hashable as before. It is only for classes whose
`__init__` does nothing but set the fields (no `__post_init__`, no `init=False` field):
`evolver` refuses others. An unknown field name raises TypeError, as `replace` does.

How the slots are filled: the copy is made as an instance of the class's "filler", a
subclass that adds nothing (no slot, no `__dict__`: the same memory layout) but takes plain
attribute stores (`object.__setattr__`, not the frozen one), so each field is one
`copy.field = value.field` (a slot store the interpreter specialises), and only the
changed fields are passed, as a dict (the copy made before through a call of each slot's
descriptor, a method-wrapper building an argument tuple, with a keyword parameter per field
whose default was looked up when not given, cost ~36,600). Its class is then set back to
the class itself (`copy.__class__ = cls`: Python allows it between classes of the same
layout and checks that); nothing else ever sees the filler, and the copy cannot be told
apart from one `replace` makes. A class with a metaclass or
an `__init_subclass__` of its own (making a subclass would run its code) is refused.
"""

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

V = TypeVar("V")

_EVOLVERS: dict[type, Callable[..., Any]] = {}
_FILLERS: dict[type, type] = {}


def evolve(value: V, **changes: Any) -> V:
    """A copy of the frozen slotted dataclass `value` with `changes` (field name -> value)."""
    copier = _EVOLVERS.get(type(value))
    if copier is None:
        copier = _EVOLVERS[type(value)] = evolver(type(value))
    result: V = copier(value, changes)
    return result


def plain_fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    """The fields of the plain slotted dataclass `cls`: no `__post_init__`, no
    `init=False` field. TypeError for another class."""
    fields = dataclasses.fields(cls)
    if "__slots__" not in cls.__dict__ or hasattr(cls, "__post_init__") \
            or any(not field.init for field in fields):
        raise TypeError(f"{cls.__name__} is not a plain frozen slotted dataclass")
    return fields


def filler(cls: type) -> type:
    """`cls`'s filler (see the module docstring): the same layout, plain attribute stores;
    one per class (evolve, `fast_init` and the CSV reader share it). TypeError for a class
    with a metaclass or an `__init_subclass__` of its own."""
    made = _FILLERS.get(cls)
    if made is not None:
        return made
    if type(cls) is not type or "__init_subclass__" in vars(cls) \
            or any("__init_subclass__" in vars(base) for base in cls.__mro__[1:-1]):
        raise TypeError(f"{cls.__name__} cannot be copied through a filler")
    fill = type(f"{cls.__name__}Filler", (cls,), {
        "__slots__": (), "__setattr__": object.__setattr__,
        "__delattr__": object.__delattr__, "__module__": __name__})
    probe: object = object.__new__(fill)
    probe.__class__ = cls       # TypeError now, not at the first copy, if Python refuses
    _FILLERS[cls] = fill
    return fill


def evolver(cls: type) -> Callable[[Any, dict[str, Any]], Any]:
    """The copy function of `cls`, `copier(value, changes)`: every field copied, then the
    changes set (a field set twice: the second store stands); generated once. TypeError
    for a change that names no field (nothing is made then)."""
    names = [field.name for field in plain_fields(cls)]
    namespace: dict[str, Any] = {
        "_new": object.__new__, "_cls": cls, "_filler": filler(cls),
        "_setattr": setattr, "_fields": frozenset(names), "_unknown": _unknown}
    lines = [f"def evolve_{cls.__name__}(value, changes):",
             "    if changes and not _fields.issuperset(changes):",
             "        raise _unknown(_cls, changes)",
             "    copy = _new(_filler)",
             *(f"    copy.{name} = value.{name}" for name in names),
             "    for name in changes:",
             "        _setattr(copy, name, changes[name])",
             "    copy.__class__ = _cls",
             "    return copy"]
    exec("\n".join(lines), namespace)   # only field names go into the generated text
    copier: Callable[[Any, dict[str, Any]], Any] = namespace[f"evolve_{cls.__name__}"]
    return copier


def _unknown(cls: type, changes: dict[str, Any]) -> TypeError:
    names = {field.name for field in dataclasses.fields(cls)}
    unknown = ", ".join(repr(name) for name in changes if name not in names)
    return TypeError(f"{cls.__name__} has no field {unknown}")
