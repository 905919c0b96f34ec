"""Plumbing shared by every service: config, clock, MongoDB, errors, events, logging.

Nothing here knows about payers, plans or money rules; those live in each service's domain module.
"""
