"""Variables as data: the catalogue, GRIB names and MetPy-derived quantities.

``load_catalogue().resolve(name)`` tells what a name stands for: a base variable read from
GRIB (:class:`Variable`), a derived quantity (:class:`Derived`, computed by
:mod:`framecast.variables.derived`) or any GRIB field named by its ecCodes shortName
(:class:`GribName`). See ``docs/variables.md`` for the table of names.
"""

from framecast.variables.catalogue import (
    Catalogue,
    Derived,
    GribId,
    UnknownVariableError,
    Variable,
    load_catalogue,
)
from framecast.variables.gribname import GribName, parse_grib_name, qualified

__all__ = ["Catalogue", "Derived", "GribId", "GribName", "UnknownVariableError", "Variable",
           "load_catalogue", "parse_grib_name", "qualified"]
