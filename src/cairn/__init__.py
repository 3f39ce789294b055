"""Cairn: backup and recovery for virtual-machine clouds."""

__version__ = "0.1.0"
