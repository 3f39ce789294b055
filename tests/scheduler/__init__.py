"""Tests of the scheduler role (cairn.scheduler)."""
