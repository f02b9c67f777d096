# Flower, the Celery dashboard, in an image of its own: the torch-free client install plus
# flower (the [monitor] extra), about 300 MB instead of the worker's several GB.
#
#     docker build -f docker/flower.Dockerfile -t prodseg-flower .
# or let docker/compose.yaml build it.
# PYTHON_IMAGE: only a host that cannot pull from a registry names another one (a local
# build of the same Debian bookworm Python 3.11; scripts/compose-test.sh does).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}

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
# The optional secrets pip.conf and pip-ca.crt: the build host's pip configuration (a local
# index, a proxy's CA), mounted for the RUN only and never in a layer (docker/README.md).
COPY pyproject.toml constraints.txt /opt/prodseg/
RUN --mount=type=secret,id=pip.conf,target=/etc/pip.conf \
    --mount=type=secret,id=pip-ca.crt \
    python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['monitor']))" > /tmp/requirements.txt \
 && pip install --no-cache-dir -c /opt/prodseg/constraints.txt -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

COPY prodseg/ prodseg/
COPY workers/ workers/
COPY tasks/ tasks/
COPY producer/ producer/
COPY storage/ storage/
COPY README.md ./
# The import check runs from / : in /opt/prodseg the source folder prodseg/ (the shared
# vocabulary) would shadow the installed package of the same name.
RUN --mount=type=secret,id=pip.conf,target=/etc/pip.conf \
    --mount=type=secret,id=pip-ca.crt \
    pip install --no-cache-dir --no-deps -c /opt/prodseg/constraints.txt . \
 && rm -rf build ./*.egg-info \
 && cd / && python -c "import prodseg.tasks.app, flower"

USER prodseg
WORKDIR /home/prodseg
EXPOSE 5555
CMD ["celery", "-A", "prodseg.tasks.app", "flower", "--port=5555"]
