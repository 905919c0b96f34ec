"""Reading settings from the Nameko config (itself filled from environment variables, see deploy/nameko.yaml)."""

TRUE_WORDS = {"1", "true", "yes", "on"}


def setting(config, key, default=None):
    value = config.get(key, default)
    return default if value in (None, "") else value


def flag(config, key, default=False):
    value = config.get(key, default)
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in TRUE_WORDS


def integer(config, key, default):
    return int(setting(config, key, default))


def database_name(config, service_name):
    """Each service owns one database: <MONGO_DB_PREFIX><service>, e.g. sitax_identity."""
    return f"{setting(config, 'MONGO_DB_PREFIX', 'sitax_')}{service_name}"
