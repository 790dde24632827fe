"""The per-store dashboard: an Airflow plugin mounting a small FastAPI app at ``/omnisend``.

``data`` builds the numbers from what runs leave behind (no Airflow, no FastAPI), ``page`` renders
them as HTML with an inline SVG chart, ``app`` serves them behind Airflow's auth manager and
``plugin`` registers the app and its nav entry with the api-server. See docs/dashboard.md.
"""

from __future__ import annotations
