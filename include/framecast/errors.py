"""The project's own exception types.

Every error a user can cause (bad input, bad config, unreachable servers) is raised as one of
these, with a message naming the file, field or value at fault, so the CLI can print one line
and exit non-zero, and Airflow tasks fail with a readable reason.
"""

from __future__ import annotations


class FramecastError(Exception):
    """Base class: an error framecast explains to the user (no traceback needed)."""

    exit_code = 1


class SpecError(FramecastError):
    """A product, region or catalog specification is malformed or names something unknown."""

    exit_code = 2


class DataError(FramecastError):
    """Input data is missing, unreadable or not what the spec needs (variable, step, file)."""

    exit_code = 3


class GribError(DataError):
    """A file is not valid GRIB2, is truncated, or lacks the expected message."""


class FetchError(FramecastError):
    """Downloading from the upstream server failed after all retries."""

    exit_code = 4


class UpstreamNotReady(FetchError):
    """The upstream model run is not (yet) complete on the server."""


class RenderError(FramecastError):
    """Rendering a frame failed."""

    exit_code = 5


class PublishError(FramecastError):
    """Uploading to the publish target failed."""

    exit_code = 6


class PublishAuthError(PublishError):
    """The publish target rejected the credentials."""


class SourceError(FramecastError):
    """A tabular source (SQL database) is unreachable or a query failed."""

    exit_code = 7


class ClimatologyError(DataError):
    """The climatology file an anomaly needs is missing, unreadable, lacks the variable or the
    calendar month, or is on a grid that cannot be interpolated."""
