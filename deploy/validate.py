#!/usr/bin/env python3
"""Offline checks of the deployment files (no Docker engine or Kubernetes API needed).

Parses docker-compose.yml and every deploy/k8s/*.yaml (multi-document) with PyYAML, then checks what a typo would
break: every document has apiVersion/kind/metadata.name; kustomization resources exist; Deployment/StatefulSet
selectors match their pod labels; Services select some workload; probes name a declared container port;
envFrom/valueFrom refer to ConfigMaps/Secrets/keys that exist; each role gets the settings the cluster contract
requires; compose services carry the same settings. Exit code 1 on the first list of problems.
Usage: python3 deploy/validate.py   (needs python3-yaml)
"""
import pathlib
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
problems = []


def check(condition, message):
    if not condition:
        problems.append(message)


# ---------------------------------------------------------------- Kubernetes
docs = []
for path in sorted(K8S.glob("*.yaml")):
    for doc in yaml.safe_load_all(path.read_text()):
        if doc is None:
            continue
        docs.append((path.name, doc))
        for key in ("apiVersion", "kind"):
            check(key in doc, f"{path.name}: a document without {key}")
        if doc.get("kind") != "Kustomization":
            check(doc.get("metadata", {}).get("name"), f"{path.name}: a {doc.get('kind')} without metadata.name")

kustomization = next(d for _, d in docs if d.get("kind") == "Kustomization")
for resource in kustomization["resources"]:
    check((K8S / resource).is_file(), f"kustomization.yaml: resource {resource} does not exist")

by_kind = {}
for _, doc in docs:
    by_kind.setdefault(doc["kind"], {})[doc.get("metadata", {}).get("name")] = doc


def data_keys(kind, name):
    doc = by_kind.get(kind, {}).get(name)
    if doc is None:
        return None
    return set((doc.get("data") or {}).keys()) | set((doc.get("stringData") or {}).keys())


workloads = {**by_kind.get("Deployment", {}), **by_kind.get("StatefulSet", {})}
for name, workload in workloads.items():
    spec = workload["spec"]
    pod = spec["template"]
    selector = spec["selector"]["matchLabels"]
    labels = pod["metadata"]["labels"]
    check(all(labels.get(k) == v for k, v in selector.items()), f"{name}: selector {selector} does not match pod labels")
    for container in pod["spec"]["containers"]:
        ports = {p.get("name") for p in container.get("ports", [])} | {p["containerPort"] for p in container.get("ports", [])}
        check("resources" in container and "requests" in container["resources"], f"{name}/{container['name']}: no resource requests")
        for probe in ("readinessProbe", "livenessProbe"):
            check(probe in container, f"{name}/{container['name']}: no {probe}")
            http = container.get(probe, {}).get("httpGet")
            if http:
                check(http["port"] in ports, f"{name}/{container['name']}: {probe} port {http['port']} is not declared")
        for source in container.get("envFrom", []):
            for kind, ref in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                if ref in source:
                    check(data_keys(kind, source[ref]["name"]) is not None, f"{name}: envFrom {kind} {source[ref]['name']} does not exist")
        for env in container.get("env", []):
            for kind, ref in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                r = env.get("valueFrom", {}).get(ref)
                if r:
                    keys = data_keys(kind, r["name"])
                    check(keys is not None and r["key"] in keys, f"{name}: env {env['name']} refers to missing {kind} {r['name']}/{r['key']}")


def env_names(workload):
    container = workload["spec"]["template"]["spec"]["containers"][0]
    names = {e["name"] for e in container.get("env", [])}
    for source in container.get("envFrom", []):
        for kind, ref in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if ref in source:
                names |= data_keys(kind, source[ref]["name"]) or set()
    return names


both = {"Cluster__PostgresConnectionString", "Cluster__ClusterKey"}
silo_env = env_names(by_kind["Deployment"]["silo"])
gateway_env = env_names(by_kind["Deployment"]["gateway"])
silo_required = both | {"Cluster__SiloId", "Cluster__AdvertisedAddress", "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL"}
check(silo_required <= silo_env, f"silo: missing settings {sorted(silo_required - silo_env)}")
check(both <= gateway_env, f"gateway: missing settings {sorted(both - gateway_env)}")
check(not any(n.startswith("OPENAI_") for n in gateway_env), "gateway: model settings belong to silos only")
silo_container = by_kind["Deployment"]["silo"]["spec"]["template"]["spec"]["containers"][0]
silo_vars = [e["name"] for e in silo_container["env"]]
check(silo_vars.index("POD_IP") < silo_vars.index("Cluster__AdvertisedAddress"), "silo: POD_IP must precede Cluster__AdvertisedAddress for $(POD_IP)")

for name, service in by_kind.get("Service", {}).items():
    selector = service["spec"]["selector"]
    check(any(all(w["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in selector.items()) for w in workloads.values()),
          f"Service {name}: selects no workload")

# ---------------------------------------------------------------- docker compose
compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
services = compose["services"]
check(set(services) == {"postgres", "silo-1", "silo-2", "gateway-1", "gateway-2"}, f"compose: services {sorted(services)}")
check(any(str(p).endswith(":5432") for p in services["postgres"].get("ports", [])), "compose: postgres must publish 5432 for the tests")
check(services["postgres"]["environment"].get("POSTGRES_PASSWORD") == "${POSTGRES_PASSWORD:-postgres}", "compose: tests expect password postgres")
for name, service in services.items():
    check("healthcheck" in service, f"compose: {name} has no healthcheck")
    env = service.get("environment") or {}
    if name.startswith("silo-"):
        check(both | {"Cluster__SiloId", "Cluster__AdvertisedAddress", "OPENAI_API_KEY"} <= set(env), f"compose: {name} settings {sorted(env)}")
        check(env.get("Cluster__AdvertisedAddress") == f"http://{name}:8080/", f"compose: {name} advertises {env.get('Cluster__AdvertisedAddress')}")
        check("ports" not in service, f"compose: {name} must not publish its internal endpoints")
    if name.startswith("gateway-"):
        check(both <= set(env), f"compose: {name} settings {sorted(env)}")
        check(not any(k.startswith("OPENAI_") for k in env), f"compose: {name} gets model settings")
        check(set(service.get("depends_on", {})) == {"silo-1", "silo-2"}, f"compose: {name} depends_on")
check(compose.get("volumes") and "pgdata" in compose["volumes"], "compose: no pgdata volume")

if problems:
    print("\n".join(f"FAIL {p}" for p in problems))
    sys.exit(1)
print(f"ok: {len(docs)} Kubernetes documents in {len(list(K8S.glob('*.yaml')))} files, {len(services)} compose services")
