"""The Omnisend emulator and the sample store, shipped for users' own tests. Imports no Airflow."""

from __future__ import annotations
