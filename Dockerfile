# The ps-sync image: one image, two roles (worker, ingress), chosen by the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY pssync ./pssync
RUN pip install --no-cache-dir . && useradd --system --uid 10001 pssync
USER pssync
ENV PSSYNC_ENVIRONMENT=production
CMD ["python", "-m", "pssync.worker"]
