"""Agents: register, replace and archive (writes); list and read (reads)."""

from __future__ import annotations

from fastapi import APIRouter

from api.agents import reads, writes

PREFIX = "/api/v1/agents"
router = APIRouter(tags=["agents"])
router.include_router(writes.router, prefix=PREFIX)
router.include_router(reads.router, prefix=PREFIX)
