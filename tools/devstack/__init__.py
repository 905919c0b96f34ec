"""Starts and stops the whole system on one machine: broker and database when none is configured, every
service, the gateway and the simulators. ``make run`` and the end-to-end tests both use it."""
