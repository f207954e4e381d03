#!/usr/bin/env python3
"""Offline checks of the deployment files against the code (no Docker engine or Kubernetes API needed).

The contract is read from the sources, so the checks follow the code:
  - settings: the properties of ClusterSiloOptions (src/Silo/Hosting/ClusterSiloExtensions.cs) and
    ClusterClientOptions (src/Gateway/Cluster/ClusterClientExtensions.cs), with their [Required] and [Range]
    attributes and defaults;
  - HTTP routes the probes may use: MapGet/MapGroup in src/Silo/SiloProgram.cs and src/Gateway/Health/HealthApi.cs;
  - projects: AssemblyName and ProjectReference of src/Silo/Silo.csproj and src/Gateway/Gateway.csproj.

Then, for docker-compose.yml, deploy/k8s/*.yaml and deploy/docker/*.Dockerfile:
  - every required setting of each role is there, named when missing (silos: the connection string, the advertised
    address, ClusterId/ServiceId and the model settings; gateways: the connection string, ClusterId/ServiceId);
  - no stale setting of the old runtime (Cluster__ClusterKey, SiloId, LeaseTtl, HeartbeatInterval, SiloTimeout), no
    Cluster__ key the role does not read, no model or silo-only settings on gateways; values parse and are in range;
    silos and gateways agree on ClusterId/ServiceId;
  - silos advertise an IP address: in compose a literal equal to the silo's fixed ipv4_address inside the network's
    ipam subnet (outside its dynamic ip_range), in Kubernetes status.podIP from the downward API;
  - the Orleans silo and gateway ports (effective values: env, else image ENV, else the code's default) are declared:
    compose `expose` (never published), Kubernetes containerPorts, silo image EXPOSE; gateways declare none;
  - probes and health checks (k8s httpGet, compose healthcheck, Dockerfile HEALTHCHECK) use routes that exist on that
    role, on its HTTP port; readiness is /health/ready; liveness does not depend on other processes;
  - silos get more time to stop than the host's shutdown timeout (terminationGracePeriodSeconds, stop_grace_period);
  - Kubernetes cross-references: kustomization resources exist and list every file, images match, selectors match
    pod labels, Services / PodDisruptionBudgets / NetworkPolicies select workloads and name declared ports,
    envFrom/valueFrom name existing ConfigMap/Secret keys, a PodDisruptionBudget covers the silos;
  - Dockerfiles: multi-stage, non-root, a restore layer with every project of the role's reference closure copied
    before `dotnet restore`, ENTRYPOINT runs the role's assembly; PostgreSQL images are 15 or newer.
Exit code 1 with every problem found (FAIL lines), 0 with a summary.

Usage: python3 deploy/validate.py [--compose FILE] [--k8s DIR] [--docker DIR]   (needs python3-yaml)
The options check other copies of the files (tests use them); the contract is always read from this repository.
"""
import argparse
import ipaddress
import pathlib
import re
import shlex
import sys
from urllib.parse import urlparse

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent

parser = argparse.ArgumentParser(description="Offline checks of the deployment files.")
parser.add_argument("--compose", type=pathlib.Path, default=ROOT / "docker-compose.yml")
parser.add_argument("--k8s", type=pathlib.Path, default=ROOT / "deploy" / "k8s")
parser.add_argument("--docker", type=pathlib.Path, default=ROOT / "deploy" / "docker")
args = parser.parse_args()

problems = []


def check(condition, message):
    if not condition:
        problems.append(message)
    return bool(condition)


# ================================================================ the contract, from the sources

def cs_class_body(path, class_name):
    text = path.read_text()
    match = re.search(r"\bclass\s+" + re.escape(class_name) + r"\b[^{]*\{", text)
    if not match:
        raise SystemExit(f"validate.py: class {class_name} not found in {path}")
    depth, start = 1, match.end()
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start:i]
    raise SystemExit(f"validate.py: class {class_name} in {path} does not end")


def parse_timespan(value):
    """[d.]hh:mm:ss[.fff] -> seconds, or None."""
    match = re.fullmatch(r"(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,7}))?", str(value).strip())
    if not match:
        return None
    days, hours, minutes, seconds, fraction = match.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds) + float("0." + (fraction or "0"))


def cs_options(path, class_name):
    """{property: {"type", "required", "range", "default"}} of a C# options class."""
    options, attributes = {}, []
    for line in cs_class_body(path, class_name).splitlines():
        line = line.strip()
        if line.startswith("["):
            attributes.append(line)
            continue
        match = re.match(r"public\s+([\w.?<>]+)\s+(\w+)\s*\{\s*get;\s*set;\s*\}(?:\s*=\s*(.+?);)?", line)
        if match:
            type_, name, default = match.groups()
            spec = {"type": type_.rstrip("?"), "required": any(a.startswith("[Required") for a in attributes), "range": None, "default": None}
            for attribute in attributes:
                r = re.match(r"\[Range\(typeof\(TimeSpan\),\s*\"([^\"]+)\",\s*\"([^\"]+)\"", attribute)
                if r:
                    spec["range"] = (parse_timespan(r.group(1)), parse_timespan(r.group(2)))
                r = re.match(r"\[Range\((\d+),\s*(\d+)", attribute)
                if r:
                    spec["range"] = (int(r.group(1)), int(r.group(2)))
            if default is not None:
                if re.fullmatch(r"\d+", default):
                    spec["default"] = int(default)
                elif re.fullmatch(r'"[^"]*"', default):
                    spec["default"] = default.strip('"')
            options[name] = spec
            attributes = []
        elif line and not line.startswith("///") and not line.startswith("//"):
            attributes = []
    return options


def cs_routes(*paths):
    """GET routes mapped in these files: MapGet on the app or on a MapGroup variable."""
    routes = set()
    for path in paths:
        text = path.read_text()
        groups = {m.group(1): m.group(2) for m in re.finditer(r"(\w+)\s*=\s*\w+\.MapGroup\(\"([^\"]*)\"\)", text)}
        for m in re.finditer(r"(\w+)\.MapGet\(\"([^\"]*)\"", text):
            route = (groups.get(m.group(1), "") + "/" + m.group(2)).replace("//", "/")
            routes.add(route.rstrip("/") or "/")
    return routes


def csproj_closure(path):
    """The project and every project it references, transitively: {path relative to ROOT}."""
    seen, pending = set(), [path.resolve()]
    while pending:
        project = pending.pop()
        if project in seen:
            continue
        seen.add(project)
        for ref in re.findall(r"<ProjectReference\s+Include=\"([^\"]+)\"", project.read_text()):
            pending.append((project.parent / ref.replace("\\", "/")).resolve())
    return {p.relative_to(ROOT).as_posix() for p in seen}


def assembly_name(path):
    match = re.search(r"<AssemblyName>([^<]+)</AssemblyName>", path.read_text())
    return match.group(1) if match else path.stem


SILO_OPTIONS = cs_options(ROOT / "src/Silo/Hosting/ClusterSiloExtensions.cs", "ClusterSiloOptions")
GATEWAY_OPTIONS = cs_options(ROOT / "src/Gateway/Cluster/ClusterClientExtensions.cs", "ClusterClientOptions")
ROUTES = {
    "silo": cs_routes(ROOT / "src/Silo/SiloProgram.cs"),
    "gateway": cs_routes(ROOT / "src/Gateway/Health/HealthApi.cs"),
}
PROJECTS = {"silo": ROOT / "src/Silo/Silo.csproj", "gateway": ROOT / "src/Gateway/Gateway.csproj"}
for role, routes in ROUTES.items():
    if "/health/ready" not in routes:
        raise SystemExit(f"validate.py: no /health/ready route found for the {role} (found {sorted(routes)}); update cs_routes")

# What the deployment files must give each role, beyond the code's [Required] settings: ClusterId and ServiceId
# explicitly (silos and gateways of one cluster must agree), and the model settings on silos (empty = demo model).
MODEL_SETTINGS = {"OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL"}
REQUIRED = {
    "silo": {f"Cluster__{n}" for n, s in SILO_OPTIONS.items() if s["required"]} | {"Cluster__ClusterId", "Cluster__ServiceId"} | MODEL_SETTINGS,
    "gateway": {f"Cluster__{n}" for n, s in GATEWAY_OPTIONS.items() if s["required"]} | {"Cluster__ClusterId", "Cluster__ServiceId"},
}
KNOWN = {"silo": {f"Cluster__{n}" for n in SILO_OPTIONS}, "gateway": {f"Cluster__{n}" for n in GATEWAY_OPTIONS}}
STALE = {
    "Cluster__ClusterKey": "the old runtime's shared key; Orleans needs none (keep the Orleans ports private instead)",
    "Cluster__SiloId": "the old runtime's silo id; an Orleans silo's identity is its address, port and start time",
    "Cluster__LeaseTtl": "the old runtime's thread leases; Orleans membership replaced them (Cluster__ProbeTimeout, Cluster__MissedProbesLimit)",
    "Cluster__HeartbeatInterval": "the old runtime's heartbeat; Orleans membership probes replaced it (Cluster__ProbeTimeout)",
    "Cluster__SiloTimeout": "the old runtime's liveness window; Orleans declares silos dead after Cluster__MissedProbesLimit missed probes",
}
# Liveness must not fail because another process is down (that would restart healthy processes): a gateway's
# /health asks a silo for the model catalogue and /health/ready needs a silo; a silo's /health/ready needs PostgreSQL.
LIVENESS = {"silo": {"/health"}, "gateway": {"/health/live"}}
READINESS = "/health/ready"
DEFAULT_SHUTDOWN_SECONDS = 30   # .NET host default
SHUTDOWN_MARGIN_SECONDS = 10    # between the host giving up and the container being killed
MIN_POSTGRES = 15               # UNIQUE NULLS NOT DISTINCT


def is_model_setting(name):
    return name in MODEL_SETTINGS or name.startswith("OPENAI_") or name.startswith("OpenAI__") or name.startswith("AZURE_")


def shutdown_key(env):
    for key in env:
        if key.lower() in ("dotnet_shutdowntimeoutseconds", "shutdowntimeoutseconds"):
            return key
    return None


def check_settings(where, role, env):
    """env: {name: literal value, or None when it comes from elsewhere (downward API, a Secret we do not parse)}."""
    missing = REQUIRED[role] - set(env)
    check(not missing, f"{where}: missing {role} settings {sorted(missing)}")
    options = SILO_OPTIONS if role == "silo" else GATEWAY_OPTIONS
    for name, value in sorted(env.items()):
        if name in STALE:
            problems.append(f"{where}: stale setting {name}: {STALE[name]}")
            continue
        if name.startswith("Cluster__") and name not in KNOWN[role]:
            other = "silo" if role == "gateway" else "gateway"
            hint = f" (a {other} setting)" if name in KNOWN[other] else ""
            problems.append(f"{where}: {name} is not a {role} setting{hint}")
            continue
        if role == "gateway" and is_model_setting(name):
            problems.append(f"{where}: model setting {name} on a gateway: models are called by silos only")
            continue
        if value is None or not name.startswith("Cluster__"):
            continue
        spec = options[name[len("Cluster__"):]]
        value = str(value)
        if spec["type"] == "int":
            if not check(re.fullmatch(r"\d+", value), f"{where}: {name}={value!r} is not an integer"):
                continue
            if spec["range"]:
                low, high = spec["range"]
                check(low <= int(value) <= high, f"{where}: {name}={value} is outside {low}..{high}")
        elif spec["type"] == "TimeSpan":
            seconds = parse_timespan(value)
            if not check(seconds is not None, f"{where}: {name}={value!r} is not a TimeSpan (hh:mm:ss)"):
                continue
            if spec["range"]:
                low, high = spec["range"]
                check(low <= seconds <= high, f"{where}: {name}={value} is outside {low} s..{high} s")
        elif spec["type"] == "bool":
            check(value.lower() in ("true", "false"), f"{where}: {name}={value!r} is not true/false")
        elif name in ("Cluster__ClusterId", "Cluster__ServiceId"):
            check(re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value), f"{where}: {name}={value!r} is not 1-64 letters, digits, '_', '.' or '-'")
        elif name == "Cluster__Schema":
            check(re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value), f"{where}: {name}={value!r} is not a lowercase PostgreSQL identifier")
    key = shutdown_key(env)
    if key and env[key] is not None:
        check(re.fullmatch(r"\d+", str(env[key])), f"{where}: {key}={env[key]!r} is not a whole number of seconds")


def effective(env, image_env, name, default):
    for source in (env, image_env):
        if source.get(name) is not None:
            return str(source[name])
    return None if default is None else str(default)


def orleans_ports(env, image_env):
    """The silo's (silo-to-silo, gateway) ports as it will run."""
    result = []
    for name in ("SiloPort", "GatewayPort"):
        value = effective(env, image_env, f"Cluster__{name}", SILO_OPTIONS[name]["default"])
        result.append(int(value) if value and value.isdigit() else None)
    return tuple(result)


def shutdown_seconds(env, image_env):
    for source in (env, image_env):
        key = shutdown_key(source)
        if key and str(source[key]).isdigit():
            return int(source[key])
    return DEFAULT_SHUTDOWN_SECONDS


def check_route(where, role, path, kind):
    if not check(path in ROUTES[role], f"{where}: {kind} path {path} is not a {role} route (routes: {sorted(ROUTES[role])})"):
        return
    if kind == "readiness":
        check(path == READINESS, f"{where}: readiness on {path}; use {READINESS}, which checks the role's dependencies")
    if kind in ("liveness", "startup"):
        check(path in LIVENESS[role], f"{where}: {kind} on {path} fails when another process is down; use {sorted(LIVENESS[role])}")


def check_health_url(where, role, url, http_port, kind):
    parsed = urlparse(url)
    check(parsed.port == http_port, f"{where}: {kind} check on port {parsed.port}, the HTTP port is {http_port}")
    check_route(where, role, parsed.path.rstrip("/") or "/", kind)


# ================================================================ Dockerfiles

def dockerfile(path):
    """Instructions as (KEYWORD, arguments), continuation lines joined."""
    instructions, pending = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def dockerfile_env(instructions, stage_index):
    """ENV of the given stage (0-based FROM index)."""
    env, stage = {}, -1
    for keyword, rest in instructions:
        if keyword == "FROM":
            stage += 1
        elif keyword == "ENV" and stage == stage_index:
            for token in shlex.split(rest):
                if "=" in token:
                    k, v = token.split("=", 1)
                    env[k] = v
    return env


IMAGES = {}
for role, file_name in (("silo", "Silo.Dockerfile"), ("gateway", "Gateway.Dockerfile")):
    path = args.docker / file_name
    where = f"deploy/docker/{file_name}"
    if not check(path.is_file(), f"{where}: missing"):
        continue
    instructions = dockerfile(path)
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    check(len(froms) >= 2, f"{where}: not multi-stage (build and runtime stages)")
    final = len(froms) - 1
    image_env = dockerfile_env(instructions, final)
    http_ports = image_env.get("ASPNETCORE_HTTP_PORTS", "8080")
    check(http_ports.isdigit(), f"{where}: ASPNETCORE_HTTP_PORTS={http_ports!r}: one port expected")
    http_port = int(http_ports) if http_ports.isdigit() else 8080
    last_stage = []
    stage = -1
    for keyword, rest in instructions:
        if keyword == "FROM":
            stage += 1
        elif stage == final:
            last_stage.append((keyword, rest))
    users = [rest for keyword, rest in last_stage if keyword == "USER"]
    check(users and users[-1] not in ("root", "0", "0:0"), f"{where}: the runtime stage must run as a non-root USER")
    exposed = {int(p.split("/")[0]) for keyword, rest in last_stage if keyword == "EXPOSE" for p in rest.split()}
    check(http_port in exposed, f"{where}: EXPOSE lacks the HTTP port {http_port}")
    silo_port, gateway_port = orleans_ports({}, image_env)
    if role == "silo":
        for name, port in (("silo-to-silo", silo_port), ("Orleans gateway", gateway_port)):
            check(port in exposed, f"{where}: EXPOSE lacks the {name} port {port}")
    else:
        check(not exposed & {silo_port, gateway_port}, f"{where}: a gateway is an Orleans client and listens on no Orleans port")
    for name in image_env:
        if name in STALE:
            problems.append(f"{where}: stale setting {name} in ENV: {STALE[name]}")
        elif name.startswith("Cluster__") and name not in KNOWN[role]:
            problems.append(f"{where}: ENV {name} is not a {role} setting")
        elif role == "gateway" and is_model_setting(name):
            problems.append(f"{where}: ENV {name}: model settings belong to silos only")
    # Restore layer: every project of the closure copied before `dotnet restore`, the sources only after it.
    restore = next((i for i, (k, r) in enumerate(instructions) if k == "RUN" and "dotnet restore" in r), None)
    sources = next((i for i, (k, r) in enumerate(instructions) if k == "COPY" and re.match(r"src/?\s", r)), None)
    if check(restore is not None, f"{where}: no `RUN dotnet restore` layer"):
        check(sources is None or sources > restore, f"{where}: the sources are copied before `dotnet restore` (no restore layer)")
        copied = " ".join(r for k, r in instructions[:restore] if k == "COPY")
        for project in sorted(csproj_closure(PROJECTS[role])):
            check(project in copied, f"{where}: {project} (referenced by the {role}) is not copied before `dotnet restore`")
        for props in ("Directory.Build.props", "Directory.Packages.props"):
            check(props in copied, f"{where}: {props} is not copied before `dotnet restore`")
    entry = [rest for keyword, rest in last_stage if keyword == "ENTRYPOINT"]
    dll = assembly_name(PROJECTS[role]) + ".dll"
    check(entry and dll in entry[-1], f"{where}: ENTRYPOINT does not run {dll}")
    healthchecks = [rest for keyword, rest in last_stage if keyword == "HEALTHCHECK"]
    if check(healthchecks, f"{where}: no HEALTHCHECK"):
        urls = re.findall(r"https?://[^\s\"']+", healthchecks[-1])
        if check(urls, f"{where}: HEALTHCHECK calls no URL"):
            check_health_url(where, role, urls[0], http_port, "readiness")
    IMAGES[role] = {"env": image_env, "http_port": http_port}


def image_env(role):
    return IMAGES.get(role, {}).get("env", {})


def http_port(role):
    return IMAGES.get(role, {}).get("http_port", 8080)


# ================================================================ Kubernetes

K8S = args.k8s
docs = []
for path in sorted(K8S.glob("*.yaml")):
    for doc in yaml.safe_load_all(path.read_text()):
        if doc is None:
            continue
        docs.append((path.name, doc))
        for key in ("apiVersion", "kind"):
            check(key in doc, f"{path.name}: a document without {key}")
        if doc.get("kind") != "Kustomization":
            check((doc.get("metadata") or {}).get("name"), f"{path.name}: a {doc.get('kind')} without metadata.name")

by_kind = {}
for _, doc in docs:
    by_kind.setdefault(doc.get("kind"), {})[(doc.get("metadata") or {}).get("name")] = doc

kustomization = next((d for _, d in docs if d.get("kind") == "Kustomization"), None)
workloads = {**by_kind.get("Deployment", {}), **by_kind.get("StatefulSet", {})}
if check(kustomization, "deploy/k8s: no kustomization.yaml"):
    resources = kustomization.get("resources") or []
    for resource in resources:
        check((K8S / resource).is_file(), f"kustomization.yaml: resource {resource} does not exist")
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            check(path.name in resources, f"kustomization.yaml: {path.name} is not listed in resources")
    images = {i.get("name") for i in kustomization.get("images") or []}
    for name, workload in workloads.items():
        for container in workload["spec"]["template"]["spec"]["containers"]:
            image = container["image"].rsplit(":", 1)[0] if ":" in container["image"].split("/")[-1] else container["image"]
            if image.startswith("conversations-"):
                check(image in images, f"kustomization.yaml: no images entry for {image} ({name})")


def data_keys(kind, name):
    doc = by_kind.get(kind, {}).get(name)
    if doc is None:
        return None
    return set((doc.get("data") or {}).keys()) | set((doc.get("stringData") or {}).keys())


def data_value(kind, name, key):
    doc = by_kind.get(kind, {}).get(name) or {}
    return {**(doc.get("data") or {}), **(doc.get("stringData") or {})}.get(key)


def pod_labels(workload):
    return workload["spec"]["template"]["metadata"].get("labels") or {}


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def selected_workloads(selector):
    return [w for w in workloads.values() if selects(selector, pod_labels(w))]


def container_ports(workload):
    ports = {}
    for container in workload["spec"]["template"]["spec"]["containers"]:
        for port in container.get("ports", []):
            ports[port["containerPort"]] = port["containerPort"]
            if port.get("name"):
                ports[port["name"]] = port["containerPort"]
    return ports


def k8s_env(workload):
    """{name: literal, or None for values from the downward API / Secrets}, and {name: env entry} for valueFrom."""
    container = workload["spec"]["template"]["spec"]["containers"][0]
    env, entries = {}, {}
    for source in container.get("envFrom", []):
        for kind, ref in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if ref in source:
                for key in data_keys(kind, source[ref]["name"]) or set():
                    env[key] = data_value(kind, source[ref]["name"], key) if kind == "ConfigMap" else None
    for entry in container.get("env", []):
        env[entry["name"]] = entry.get("value")
        entries[entry["name"]] = entry
    return env, entries


for name, workload in workloads.items():
    spec = workload["spec"]
    pod = spec["template"]
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    check(selects(selector, pod_labels(workload)), f"{name}: selector {selector} does not match pod labels")
    ports = container_ports(workload)
    for container in pod["spec"]["containers"]:
        where = f"{name}/{container['name']}"
        check("resources" in container and "requests" in container["resources"], f"{where}: no resource requests")
        for port in container.get("ports", []):
            if port.get("name"):
                check(re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?", port["name"]), f"{where}: port name {port['name']!r} is not a valid (<= 15 chars) port name")
        for probe in ("readinessProbe", "livenessProbe"):
            check(probe in container, f"{where}: no {probe}")
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            http = (container.get(probe) or {}).get("httpGet")
            if http:
                check(http["port"] in ports, f"{where}: {probe} port {http['port']} is not declared")
        for source in container.get("envFrom", []):
            for kind, ref in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                if ref in source:
                    check(data_keys(kind, source[ref]["name"]) is not None, f"{name}: envFrom {kind} {source[ref]['name']} does not exist")
        for env in container.get("env", []):
            for kind, ref in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                r = (env.get("valueFrom") or {}).get(ref)
                if r:
                    keys = data_keys(kind, r["name"])
                    check(keys is not None and r["key"] in keys, f"{name}: env {env['name']} refers to missing {kind} {r['name']}/{r['key']}")

for role in ("silo", "gateway"):
    workload = workloads.get(role)
    if not check(workload, f"deploy/k8s: no Deployment or StatefulSet named {role}"):
        continue
    where = f"k8s {role}"
    pod_spec = workload["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]
    env, entries = k8s_env(workload)
    check_settings(where, role, env)
    ports = container_ports(workload)
    declared = set(v for v in ports.values())
    port_of = {k: v for k, v in ports.items()}
    silo_port, gateway_port = orleans_ports(env, image_env(role))
    check(http_port(role) in declared, f"{where}: containerPorts lack the HTTP port {http_port(role)}")
    if role == "silo":
        advertised = entries.get("Cluster__AdvertisedAddress", {})
        field = ((advertised.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        check(field == "status.podIP", f"{where}: Cluster__AdvertisedAddress must come from the downward API (fieldRef status.podIP), got {advertised or 'nothing'}")
        for label, port in (("silo-to-silo", silo_port), ("Orleans gateway", gateway_port)):
            check(port in declared, f"{where}: containerPorts lack the {label} port {port} (Cluster__{'SiloPort' if label == 'silo-to-silo' else 'GatewayPort'})")
        check(len({silo_port, gateway_port, http_port(role)}) == 3, f"{where}: HTTP, silo and gateway ports must differ")
        grace = pod_spec.get("terminationGracePeriodSeconds", 30)
        shutdown = shutdown_seconds(env, image_env(role))
        check(grace >= shutdown + SHUTDOWN_MARGIN_SECONDS,
              f"{where}: terminationGracePeriodSeconds {grace} must exceed the host's shutdown timeout {shutdown} s by {SHUTDOWN_MARGIN_SECONDS} s (runs interrupted, grains deactivated, membership left)")
        pdbs = [p for p in by_kind.get("PodDisruptionBudget", {}).values() if selects((p["spec"].get("selector") or {}).get("matchLabels"), pod_labels(workload))]
        if check(pdbs, f"{where}: no PodDisruptionBudget selects the silo pods"):
            pdb = pdbs[0]["spec"]
            replicas = workload["spec"].get("replicas", 1)
            allowed = pdb.get("maxUnavailable", 0) >= 1 if "maxUnavailable" in pdb else pdb.get("minAvailable", replicas) < replicas
            check(allowed, f"{where}: the PodDisruptionBudget allows no disruption at {replicas} replicas (drains would block)")
    else:
        check(not declared & {silo_port, gateway_port}, f"{where}: a gateway is an Orleans client and declares no Orleans port")
    for probe, kind in (("readinessProbe", "readiness"), ("livenessProbe", "liveness"), ("startupProbe", "startup")):
        http = (container.get(probe) or {}).get("httpGet")
        if probe != "startupProbe":
            check(http, f"{where}: {probe} is not an httpGet probe")
        if http:
            check(port_of.get(http["port"]) == http_port(role), f"{where}: {probe} is not on the HTTP port {http_port(role)}")
            check_route(where, role, http["path"].rstrip("/") or "/", kind)

cluster_ids = {}
for role in ("silo", "gateway"):
    if role in workloads:
        env, _ = k8s_env(workloads[role])
        cluster_ids[role] = (env.get("Cluster__ClusterId"), env.get("Cluster__ServiceId"))
if len(cluster_ids) == 2:
    check(cluster_ids["silo"] == cluster_ids["gateway"], f"k8s: silos and gateways disagree on (ClusterId, ServiceId): {cluster_ids}")

for name, service in by_kind.get("Service", {}).items():
    selected = selected_workloads(service["spec"].get("selector"))
    if check(selected, f"Service {name}: selects no workload"):
        for port in service["spec"].get("ports", []):
            target = port.get("targetPort", port.get("port"))
            check(any(target in container_ports(w) for w in selected), f"Service {name}: targetPort {target} is not a port of the pods it selects")

for name, pdb in by_kind.get("PodDisruptionBudget", {}).items():
    check(selected_workloads((pdb["spec"].get("selector") or {}).get("matchLabels")), f"PodDisruptionBudget {name}: selects no workload")

for name, policy in by_kind.get("NetworkPolicy", {}).items():
    selected = selected_workloads((policy["spec"].get("podSelector") or {}).get("matchLabels"))
    if not check(selected, f"NetworkPolicy {name}: selects no workload"):
        continue
    for rule in policy["spec"].get("ingress", []):
        for peer in rule.get("from", []):
            if "podSelector" in peer:
                check(selected_workloads(peer["podSelector"].get("matchLabels")), f"NetworkPolicy {name}: a from.podSelector selects no workload")
        for port in rule.get("ports", []):
            check(all(port.get("port") in container_ports(w) for w in selected), f"NetworkPolicy {name}: port {port.get('port')} is not declared by the pods it selects")


def postgres_major(image):
    tag = image.rsplit(":", 1)[1] if ":" in image else "latest"
    match = re.match(r"(\d+)", tag)
    return int(match.group(1)) if match else None


for name, workload in workloads.items():
    for container in workload["spec"]["template"]["spec"]["containers"]:
        if container["image"].split("/")[-1].startswith("postgres"):
            major = postgres_major(container["image"])
            check(major is not None and major >= MIN_POSTGRES, f"{name}: image {container['image']}: PostgreSQL {MIN_POSTGRES}+ needed (NULLS NOT DISTINCT)")

# ================================================================ docker compose

INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def interpolate(value):
    """${VAR:-default} / ${VAR-default} with their defaults (the file as written, whatever this shell has)."""
    if isinstance(value, str):
        return INTERPOLATION.sub(lambda m: m.group(2) or "", value)
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    return value


def compose_env(service):
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
    return {k: (None if v is None else str(v)) for k, v in env.items()}


def duration_seconds(value):
    total, matched = 0.0, False
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s|us)", str(value)):
        matched = True
        total += float(number) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 0.000001}[unit]
    return total if matched else None


raw_compose = yaml.safe_load(args.compose.read_text())
compose = interpolate(raw_compose)
services = compose.get("services") or {}
networks = compose.get("networks") or {}
check(set(services) == {"postgres", "silo-1", "silo-2", "gateway-1", "gateway-2"}, f"compose: services {sorted(services)}")
postgres = services.get("postgres", {})
check(any(str(p).endswith(":5432") for p in postgres.get("ports", [])), "compose: postgres must publish 5432 for the tests")
check((raw_compose.get("services", {}).get("postgres", {}).get("environment") or {}).get("POSTGRES_PASSWORD") == "${POSTGRES_PASSWORD:-postgres}", "compose: tests expect password postgres")
major = postgres_major(postgres.get("image", ""))
check(major is not None and major >= MIN_POSTGRES, f"compose: postgres image {postgres.get('image')}: PostgreSQL {MIN_POSTGRES}+ needed (NULLS NOT DISTINCT)")
check(compose.get("volumes") and "pgdata" in compose["volumes"], "compose: no pgdata volume")


def subnets(network_name):
    config = ((networks.get(network_name) or {}).get("ipam") or {}).get("config") or []
    result = []
    for entry in config:
        try:
            subnet = ipaddress.ip_network(entry["subnet"])
            ip_range = ipaddress.ip_network(entry["ip_range"]) if entry.get("ip_range") else None
            result.append((subnet, ip_range))
        except (KeyError, ValueError) as error:
            problems.append(f"compose: network {network_name}: bad ipam config {entry} ({error})")
    return result


def service_networks(service):
    value = service.get("networks")
    if value is None:
        return {"default": {}}
    if isinstance(value, list):
        return {n: {} for n in value}
    return {n: (v or {}) for n, v in value.items()}


ids, advertised_addresses = {}, {}
for name, service in services.items():
    check("healthcheck" in service, f"compose: {name} has no healthcheck")
    role = "silo" if name.startswith("silo-") else "gateway" if name.startswith("gateway-") else None
    if role is None:
        continue
    where = f"compose {name}"
    env = compose_env(service)
    check_settings(where, role, env)
    ids[name] = (env.get("Cluster__ClusterId"), env.get("Cluster__ServiceId"))
    silo_port, gateway_port = orleans_ports(env, image_env(role))
    expose = {int(str(p).split("/")[0]) for p in service.get("expose", [])}
    health = service.get("healthcheck") or {}
    test = health.get("test") or []
    urls = re.findall(r"https?://[^\s\"']+", " ".join(test) if isinstance(test, list) else str(test))
    if check(urls, f"{where}: the healthcheck calls no URL"):
        check_health_url(where, role, urls[0], http_port(role), "readiness")
    if role == "silo":
        for label, port in (("silo-to-silo", silo_port), ("Orleans gateway", gateway_port)):
            check(port in expose, f"{where}: `expose` lacks the {label} port {port}")
        check("ports" not in service, f"{where}: must not publish its ports on the host (the Orleans ports have no authentication)")
        check((service.get("depends_on") or {}).get("postgres", {}).get("condition") == "service_healthy", f"{where}: must depend on postgres being healthy")
        address = env.get("Cluster__AdvertisedAddress")
        try:
            ip = ipaddress.ip_address(address) if address else None
        except ValueError:
            ip = None
            problems.append(f"{where}: Cluster__AdvertisedAddress={address!r} is not an IP address" + (" (the old runtime's URL form is gone)" if "://" in str(address) else ""))
        if ip is not None:
            advertised_addresses.setdefault(str(ip), []).append(name)
            fixed = {n: c.get("ipv4_address") for n, c in service_networks(service).items() if c.get("ipv4_address")}
            if check(fixed, f"{where}: advertises {ip} but has no fixed ipv4_address on a network (compose has no downward API)"):
                network, fixed_ip = next((n, a) for n, a in fixed.items())
                check(fixed_ip == str(ip), f"{where}: advertises {ip} but its ipv4_address on {network} is {fixed_ip}")
                ranges = subnets(network)
                if check(ranges, f"{where}: network {network} has no ipam subnet for ipv4_address"):
                    check(any(ip in subnet for subnet, _ in ranges), f"{where}: {ip} is outside the subnet of network {network}")
                    check(all(ip_range is not None and ip not in ip_range for _, ip_range in ranges),
                          f"{where}: {ip} may be handed to another container: set ip_range on {network} to exclude the silos' addresses")
        stop = duration_seconds(service.get("stop_grace_period", "10s"))
        shutdown = shutdown_seconds(env, image_env(role))
        check(stop is not None and stop >= shutdown + SHUTDOWN_MARGIN_SECONDS,
              f"{where}: stop_grace_period {service.get('stop_grace_period', '10s (default)')} must exceed the host's shutdown timeout {shutdown} s by {SHUTDOWN_MARGIN_SECONDS} s")
    else:
        check(not expose & {silo_port, gateway_port}, f"{where}: a gateway is an Orleans client and exposes no Orleans port")
        depends = service.get("depends_on") or {}
        silos = sorted(n for n in services if n.startswith("silo-"))
        check(isinstance(depends, dict) and sorted(depends) == silos and all((depends[s] or {}).get("condition") == "service_healthy" for s in silos),
              f"{where}: must depend on every silo being healthy ({silos})")
        silo_nets = set().union(*(service_networks(services[s]) for s in silos)) if silos else set()
        check(set(service_networks(service)) & silo_nets, f"{where}: shares no network with the silos")
for address, owners in advertised_addresses.items():
    check(len(owners) == 1, f"compose: {owners} all advertise {address}")
check(len(set(ids.values())) <= 1, f"compose: silos and gateways disagree on (ClusterId, ServiceId): {ids}")

if problems:
    print("\n".join(f"FAIL {p}" for p in problems))
    sys.exit(1)
print(f"ok: {len(docs)} Kubernetes documents in {len(list(K8S.glob('*.yaml')))} files, {len(services)} compose services, "
      f"{len(IMAGES)} Dockerfiles; silo settings {sorted(REQUIRED['silo'])}; gateway settings {sorted(REQUIRED['gateway'])}; "
      f"probe routes silo {sorted(ROUTES['silo'])}, gateway {sorted(ROUTES['gateway'])}")
