"""The scanner console in the browser: a JSON API over the library (FastAPI) and a static front end (extra ``console``).

Start it with ``hifield console``; :func:`hifield.console.app.create_app` builds the application for tests and
embedding. Importing this package loads nothing heavy; FastAPI is imported by :mod:`hifield.console.app` only.
"""
