"""Django itself: secrets, hosts, apps, middleware, PostgreSQL, Redis (cache), auth, statics."""

from django.core.exceptions import ImproperlyConfigured

from ..env import DEBUG, PROJECT_ROOT, env, env_required_in_production

# Development only: the key below is public, so production must bring its own.
_DEVELOPMENT_SECRET_KEY = "django-insecure-development-only-never-use-in-production"  # noqa: S105
_MIN_SECRET_KEY_LENGTH = 50
_MIN_SECRET_KEY_UNIQUE_CHARACTERS = 5

# Django's signing key: at least 50 random characters when DEBUG=false. Default: a public
# development key.
SECRET_KEY = env_required_in_production("SECRET_KEY", development_default=_DEVELOPMENT_SECRET_KEY)
if not DEBUG and (
    len(SECRET_KEY) < _MIN_SECRET_KEY_LENGTH
    or len(set(SECRET_KEY)) < _MIN_SECRET_KEY_UNIQUE_CHARACTERS
    or SECRET_KEY.startswith("django-insecure")
):
    raise ImproperlyConfigured(
        f"SECRET_KEY is too weak for DEBUG=false: use at least {_MIN_SECRET_KEY_LENGTH} random "
        "characters, e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )

# Comma-separated host names the web role answers to.
ALLOWED_HOSTS = env_required_in_production(
    "ALLOWED_HOSTS", development_default=["localhost", "127.0.0.1", "[::1]"], cast=list
)
# Comma-separated origins (`https://admin.example.com`) trusted for the admin's forms.
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# The image's version (set by the image build); Sentry reports it as the release.
APP_VERSION = env.str("APP_VERSION", default="dev")
# The deployment's name (production, staging, ...), for Sentry and the `environment` column
# of every ClickHouse event row. Default: `production` (`development` with DEBUG=true).
ENVIRONMENT_NAME = env.str(
    "SENTRY_CONFIG_ENVIRONMENT", default="development" if DEBUG else "production"
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "app.config",
    "app.core",
    "app.users",
    "app.outbox",
    "app.clickhouse",
]

MIDDLEWARE = [
    "app.core.middleware.RequestMetricsMiddleware",
    "app.core.middleware.HealthProbeMiddleware",
    "app.core.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "app.config.urls"
WSGI_APPLICATION = "app.config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# PostgreSQL: `postgres://user:password@host:5432/database`.
DATABASE_URL = env_required_in_production(
    "DATABASE_URL", development_default="postgres://postgres@127.0.0.1:5432/die_hard"
)
# Seconds a database connection is reused (0: one per request).
DATABASE_CONN_MAX_AGE = env.int("DATABASE_CONN_MAX_AGE", default=60)
# Seconds to wait for a PostgreSQL connection.
DATABASE_CONNECT_TIMEOUT = env.int("DATABASE_CONNECT_TIMEOUT", default=5)
# Milliseconds a statement may run before PostgreSQL cancels it (0: no limit). The migrate
# role lifts it for its own session.
DATABASE_STATEMENT_TIMEOUT_MS = env.int("DATABASE_STATEMENT_TIMEOUT_MS", default=30_000)
# Milliseconds a session may sit idle inside a transaction before PostgreSQL ends it (0: no
# limit): a client that died without a reset cannot hold row locks and vacuum's horizon.
DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS = env.int(
    "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS", default=60_000
)
# The name PostgreSQL shows for these sessions (pg_stat_activity.application_name).
DATABASE_APPLICATION_NAME = env.str("DATABASE_APPLICATION_NAME", default="die-hard")
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
DATABASES["default"]["CONN_MAX_AGE"] = DATABASE_CONN_MAX_AGE
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {}).update(
    {
        "connect_timeout": DATABASE_CONNECT_TIMEOUT,
        "application_name": DATABASE_APPLICATION_NAME,
        "options": (
            f"-c statement_timeout={DATABASE_STATEMENT_TIMEOUT_MS}"
            f" -c idle_in_transaction_session_timeout={DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS}"
        ),
        # A peer that vanished without a reset (a node lost, a partition) is noticed within
        # about a minute instead of the kernel's two hours.
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
    }
)

# Redis: the cache and the Celery broker (`redis://:password@host:6379/0`, `rediss://...`).
REDIS_URL = env_required_in_production("REDIS_URL", development_default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

AUTH_USER_MODEL = "users.User"
# Argon2id with OWASP's parameters for new passwords (a public endpoint hashes them: memory-hard,
# about 20 MiB and tens of milliseconds each); PBKDF2 hashes made before still verify, and are
# upgraded at the next login.
PASSWORD_HASHERS = [
    "app.users.hashers.Argon2idPasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Where `collectstatic` puts the static files (the image sets /app/staticfiles). Default:
# `.data/static` in the project.
STATIC_ROOT = env.path("STATIC_ROOT", default=PROJECT_ROOT / ".data" / "static")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
