# One image for web, worker and trainer. The trainer builds with
# --build-arg TF_EXTRA=and-cuda, which adds NVIDIA's CUDA libraries to the
# same TensorFlow wheel.
FROM python:3.11-slim-bookworm

ARG TF_EXTRA=""
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    MEDIA_ROOT=/data/media \
    ML_WORK_DIR=/data/ml-work \
    KERAS_HOME=/data/keras

RUN useradd --create-home --uid 1000 dermcurate
WORKDIR /app

# pg_dump / pg_restore for `manage.py backup` and `restore`, of the same major version as the
# compose file's PostgreSQL (16), from the PostgreSQL project's Debian repository.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-common \
    && /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y \
    && apt-get install -y --no-install-recommends postgresql-client-16 \
    && rm -rf /var/lib/apt/lists/*

COPY requirements.txt .
RUN pip install -r requirements.txt \
    && if [ -n "$TF_EXTRA" ]; then \
         pip install "tensorflow[$TF_EXTRA]==$(sed -n 's/^tensorflow==\([^ ]*\).*/\1/p' requirements.txt)"; \
       fi

COPY . .
# Static files are collected at build time and served by WhiteNoise; the key
# below exists only for this build step.
RUN DJANGO_SECRET_KEY=collectstatic-build-step-only-not-used-at-runtime-0123456789 \
    DJANGO_ALLOWED_HOSTS=localhost python manage.py collectstatic --noinput \
    && mkdir -p /data/media /data/ml-work /data/keras && chown -R dermcurate /data

USER dermcurate
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "-c", "gunicorn.conf.py"]
