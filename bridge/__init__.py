"""The voice bridge application: settings, app and routes, auth, limits, metrics, records, CLI."""

__version__ = "0.1.0"
