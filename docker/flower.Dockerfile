# syntax=docker/dockerfile:1
#
# Flower, the Celery dashboard, in an image of its own: the torch-free client install plus
# flower (the [monitor] extra), about 300 MB instead of the worker's several GB.
#
#     docker build -f docker/flower.Dockerfile -t prodseg-flower .
# or let docker/compose.yaml build it.
FROM python:3.11-slim-bookworm

LABEL org.opencontainers.image.title="prodseg-flower" \
      org.opencontainers.image.description="Flower dashboard for prodseg's Celery workers" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN groupadd --system --gid 10001 prodseg \
 && useradd --system --uid 10001 --gid prodseg --create-home --home-dir /home/prodseg \
        --shell /usr/sbin/nologin prodseg

WORKDIR /opt/prodseg

# Dependencies first (the client's and flower), at the tested versions.
COPY pyproject.toml constraints.txt /opt/prodseg/
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['monitor']))" > /tmp/requirements.txt \
 && pip install --no-cache-dir -c /opt/prodseg/constraints.txt -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

COPY prodseg/ prodseg/
COPY workers/ workers/
COPY tasks/ tasks/
COPY producer/ producer/
COPY storage/ storage/
COPY README.md ./
RUN pip install --no-cache-dir --no-deps -c /opt/prodseg/constraints.txt . \
 && rm -rf build ./*.egg-info \
 && python -c "import prodseg.tasks.app, flower"

USER prodseg
WORKDIR /home/prodseg
EXPOSE 5555
CMD ["celery", "-A", "prodseg.tasks.app", "flower", "--port=5555"]
