"""Fixtures for registry tests: a fresh SQLite registry, synthetic diagnostic reports, and a
throwaway PostgreSQL server with a fresh database per test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.terminal import DeviceInfo
from pos_sim.diagnostics.engine import DiagnosticReport, Finding
from pos_sim.registry import Registry
from tests.pos_sim.registry.pg import PostgresServer
from tests.pos_sim.registry.pg import start as start_postgres


def device_info(serial: str = "SP1000001", lifecycle: str = "activated", firmware: str = "2.4.1") -> DeviceInfo:
    """A DeviceInfo as a terminal would report it."""
    return DeviceInfo(manufacturer="Acme", model="P10", serial=serial, hardware_rev="B", firmware_version=firmware,
                      lifecycle=lifecycle, merchant_id="M-42", activated_at=1_700_000_000, clock=1_700_000_100)


def finding(component: str, verdict: str = "pass", code: str | None = None, message: str = "ok") -> Finding:
    """A finding with the catalogue fields filled in when it is not a pass."""
    bad = verdict != "pass"
    return Finding(component=component, verdict=verdict, code=code, code_value=3 if bad else None,
                   category="hardware" if bad else None, severity="major" if bad else None,
                   merchant_fixable=False, repair_ticket=bad, message=message, advice=())


def report(serial: str = "SP1000001", verdict: str = "ok") -> DiagnosticReport:
    """A small finished report: two results and one communication finding."""
    now = time.time()
    return DiagnosticReport(
        port="/dev/ttyUSB0", plan="full", lang="en", started_at=now - 2, finished_at=now,
        device=device_info(serial), verdict=verdict, exit_status=8 if verdict == "failed" else 0,
        results=[finding("screen"), finding("printer", "fail", "PAPER_OUT", "Printer: out of paper")],
        communication=[finding("link", "error", "crc", "3 frames were resent")])


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A SQLAlchemy URL for a fresh SQLite file."""
    return f"sqlite:///{tmp_path / 'registry.db'}"


@pytest.fixture
def reg(db_url: str) -> Iterator[Registry]:
    """An opened, migrated registry on a fresh SQLite file."""
    with Registry.open(db_url) as r:
        yield r


# -- PostgreSQL (tests/pos_sim/registry/pg.py) ---------------------------------------------------


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for the session, stopped at its end (see pg.py)."""
    server = start_postgres(tmp_path_factory.mktemp("postgresql"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    """A SQLAlchemy URL for an empty database on the session's PostgreSQL server."""
    return postgres.url(postgres.fresh_database())
