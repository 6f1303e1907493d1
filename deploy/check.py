#!/usr/bin/env python3
"""Offline checks of deploy/k8s (run by CI; kubeconform is not packaged in Debian).

Every manifest parses and is listed in kustomization.yaml; every object names its apiVersion, kind,
name and namespace; workloads select their own pods, reference the ConfigMaps and Secrets that
exist, set resources and a hardened security context, and the gateway probes /healthz and
/readyz; every Service and PodDisruptionBudget selects a workload, and Service target ports exist.
NATS configurations are checked by `nats-server -t` when it is installed.

Prints one line per problem and exits 1 if there is any.
"""
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
K8S = os.path.join(HERE, "k8s")
WORKLOADS = {"Deployment", "StatefulSet"}
problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


def load():
    kustomization = yaml.safe_load(open(os.path.join(K8S, "kustomization.yaml")))
    listed = set(kustomization.get("resources", []))
    files = {f for f in os.listdir(K8S) if f.endswith(".yaml") and f != "kustomization.yaml"}
    for missing in sorted(files - listed):
        problem(missing, "not listed in kustomization.yaml")
    for absent in sorted(listed - files):
        problem("kustomization.yaml", f"lists {absent}, which does not exist")
    objects = []
    for name in sorted(files & listed):
        with open(os.path.join(K8S, name)) as f:
            for doc in yaml.safe_load_all(f):
                if doc is not None:
                    objects.append((name, doc))
    return objects


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_object(where, doc):
    for key in ("apiVersion", "kind", "metadata"):
        if key not in doc:
            problem(where, f"no {key}")
    meta = doc.get("metadata", {})
    if not meta.get("name"):
        problem(where, "no metadata.name")
    if doc.get("kind") != "Namespace" and meta.get("namespace") != "accountd":
        problem(where, f"{doc.get('kind')}/{meta.get('name')} is not in namespace accountd")


def probe_path(probe):
    return (probe or {}).get("httpGet", {}).get("path", "").split("?")[0]


def check_workload(where, doc, config_maps, secrets):
    name = doc["metadata"]["name"]
    spec = doc.get("spec", {})
    template = spec.get("template", {})
    labels = template.get("metadata", {}).get("labels", {})
    if not selects(spec.get("selector", {}).get("matchLabels"), labels):
        problem(where, f"{name}: selector does not match its pod labels")
    pod = template.get("spec", {})
    if not pod.get("securityContext", {}).get("runAsNonRoot"):
        problem(where, f"{name}: pods may run as root")
    volumes = {v["name"] for v in pod.get("volumes", [])}
    volumes |= {c["metadata"]["name"] for c in spec.get("volumeClaimTemplates", [])}
    for volume in pod.get("volumes", []):
        if "configMap" in volume and volume["configMap"]["name"] not in config_maps:
            problem(where, f"{name}: volume from unknown ConfigMap {volume['configMap']['name']}")
    for container in pod.get("containers", []):
        who = f"{name}/{container.get('name')}"
        if not container.get("image"):
            problem(where, f"{who}: no image")
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in resources.get(kind, {}):
                    problem(where, f"{who}: no {kind}.{resource}")
        hardened = container.get("securityContext", {})
        if hardened.get("allowPrivilegeEscalation") is not False:
            problem(where, f"{who}: privilege escalation not turned off")
        if hardened.get("capabilities", {}).get("drop") != ["ALL"]:
            problem(where, f"{who}: capabilities not dropped")
        for source in container.get("envFrom", []):
            if "configMapRef" in source and source["configMapRef"]["name"] not in config_maps:
                problem(where, f"{who}: unknown ConfigMap {source['configMapRef']['name']}")
            if "secretRef" in source and source["secretRef"]["name"] not in secrets:
                problem(where, f"{who}: unknown Secret {source['secretRef']['name']}")
        for mount in container.get("volumeMounts", []):
            if mount["name"] not in volumes:
                problem(where, f"{who}: mounts unknown volume {mount['name']}")
        if labels.get("app.kubernetes.io/component") == "gateway":
            if probe_path(container.get("livenessProbe")) != "/healthz":
                problem(where, f"{who}: liveness probe is not GET /healthz")
            if probe_path(container.get("readinessProbe")) != "/readyz":
                problem(where, f"{who}: readiness probe is not GET /readyz")


def check_selectors(objects):
    pods = []
    for _, doc in objects:
        if doc.get("kind") in WORKLOADS:
            template = doc["spec"]["template"]
            ports = {p.get("name") for c in template["spec"]["containers"] for p in c.get("ports", [])}
            pods.append((template["metadata"].get("labels", {}), ports))
    for where, doc in objects:
        kind, name = doc.get("kind"), doc["metadata"]["name"]
        if kind == "Service":
            matched = [ports for labels, ports in pods if selects(doc["spec"].get("selector"), labels)]
            if not matched:
                problem(where, f"Service {name} selects no workload")
            for port in doc["spec"].get("ports", []):
                target = port.get("targetPort")
                if isinstance(target, str) and not any(target in ports for ports in matched):
                    problem(where, f"Service {name}: no container port named {target}")
        if kind == "PodDisruptionBudget":
            selector = doc["spec"].get("selector", {}).get("matchLabels")
            if not any(selects(selector, labels) for labels, _ in pods):
                problem(where, f"PodDisruptionBudget {name} selects no workload")


def check_nats(objects):
    server = shutil.which("nats-server")
    if server is None:
        print("check.py: nats-server is not installed; NATS configurations not checked")
        return
    configs = [("deploy/nats/cluster.conf", open(os.path.join(HERE, "nats", "cluster.conf")).read())]
    for where, doc in objects:
        if doc.get("kind") == "ConfigMap" and "nats.conf" in doc.get("data", {}):
            configs.append((f"{where} nats.conf", doc["data"]["nats.conf"]))
    for where, text in configs:
        with tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
            f.write(text)
            f.flush()
            env = dict(os.environ, NATS_SERVER_NAME="check")
            run = subprocess.run([server, "-t", "-c", f.name], env=env, capture_output=True, text=True)
            if run.returncode != 0:
                problem(where, (run.stderr or run.stdout).strip())


def main():
    objects = load()
    config_maps = {d["metadata"]["name"] for _, d in objects if d.get("kind") == "ConfigMap"}
    secrets = {d["metadata"]["name"] for _, d in objects if d.get("kind") == "Secret"}
    for where, doc in objects:
        check_object(where, doc)
        if doc.get("kind") in WORKLOADS:
            check_workload(where, doc, config_maps, secrets)
    check_selectors(objects)
    check_nats(objects)
    for line in problems:
        print(line)
    kinds = sorted({d["kind"] for _, d in objects})
    print(f"check.py: {len(objects)} Kubernetes objects ({', '.join(kinds)}): {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
