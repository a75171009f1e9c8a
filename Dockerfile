# syntax=docker/dockerfile:1
# The jobgate operator image: `docker build -t jobgate:latest .`
#
# Stage 1 builds wheels for jobgate and every runtime dependency from pyproject.toml;
# stage 2 installs only those wheels on a slim Python, with no compiler, no dev extras and
# no pip left behind, and runs as an unprivileged user.

FROM python:3.11.13-slim-bookworm AS build
WORKDIR /src
# Only what the package build reads: the metadata (pyproject.toml names README.md as its
# readme) and the source root operator/ (setuptools finds the jobgate package there).
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11.13-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The wheels are bind-mounted from the build stage, so no copy of them stays in a layer.
# pip, setuptools and wheel are removed afterwards: nothing installs at run time.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/jobgate-*.whl \
    && pip uninstall --yes pip setuptools wheel \
    && useradd --system --uid 10001 --user-group --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin jobgate
# A numeric user, so Kubernetes can check runAsNonRoot without reading /etc/passwd.
USER 10001:10001
WORKDIR /tmp
EXPOSE 8000
ENTRYPOINT ["python", "-m", "jobgate"]
