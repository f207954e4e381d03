# syntax=docker/dockerfile:1
# The gateway: stateless HTTP/SSE front door (Conversations.Gateway.dll). Build from the repository root:
#   docker build -f deploy/docker/Gateway.Dockerfile -t conversations-gateway .
# With Cluster__PostgresConnectionString set it is an Orleans client (cluster mode): it finds the silos' gateway
# endpoints in the Orleans membership table in that database and holds no models or agents. Without it, embedded
# mode (a silo in the same process, on SQLite). It opens no Orleans port of its own.

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
# Restore layer: only the MSBuild props and the project files, so source edits don't invalidate the package cache.
# (The solution file also lists tests/, which is not in the build context; restore the project itself.)
COPY Directory.Build.props Directory.Packages.props .editorconfig ./
COPY src/Grains.Abstractions/Grains.Abstractions.csproj src/Grains.Abstractions/
COPY src/Grains/Grains.csproj src/Grains/
COPY src/ServiceDefaults/ServiceDefaults.csproj src/ServiceDefaults/
COPY src/Silo/Silo.csproj src/Silo/
COPY src/Gateway/Gateway.csproj src/Gateway/
RUN dotnet restore src/Gateway/Gateway.csproj
COPY src/ src/
RUN dotnet publish src/Gateway/Gateway.csproj -c Release --no-restore -o /app /p:UseAppHost=false

FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS runtime
# curl only for the container health check (compose / `docker run --health-*`); Kubernetes probes don't need it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app ./
# Embedded mode keeps its SQLite file under data/ (relative to the content root); give the non-root user a place.
RUN mkdir -p /app/data && chown "$APP_UID" /app/data
ENV ASPNETCORE_HTTP_PORTS=8080 \
    DOTNET_CLI_TELEMETRY_OPTOUT=1
EXPOSE 8080
# The image's built-in non-root user (uid 1654).
USER $APP_UID
# Ready when a silo answers through Orleans (cluster mode) and storage is up.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/health/ready || exit 1
ENTRYPOINT ["dotnet", "Conversations.Gateway.dll"]
