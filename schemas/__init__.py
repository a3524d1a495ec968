"""Pydantic models for everything that crosses a boundary: files, requests, events, settings."""
