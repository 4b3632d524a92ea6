"""framecast: forecast maps and animations from NWP GRIB2 and time-indexed data.

The core package is usable without Airflow: data flows one way,
catalog -> fetch -> dataset -> render -> publish -> metrics.
"""

__version__ = "0.1.0"
