# The ps-sync image: one image, two roles (worker, ingress), chosen by the command.
# The product is built into a wheel first, so the image holds exactly what the wheel holds: no vendor
# sandboxes, no local stack runner, no benchmark, no tests (tests/unit/test_wheel_contents.py).
FROM python:3.11-slim AS build
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels && useradd --system --uid 10001 --create-home pssync
USER pssync
WORKDIR /home/pssync
ENV PSSYNC_ENVIRONMENT=production
CMD ["python", "-m", "worker"]
