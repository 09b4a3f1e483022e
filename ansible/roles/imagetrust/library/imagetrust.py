#!/usr/bin/python3
# -*- coding: utf-8 -*-
# Copyright: imagetrust contributors. Apache-2.0.
"""Runs the imagetrust CLI with --json and turns its report into Ansible's."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: imagetrust
short_description: Run imagetrust apply or check and report what it changed
description:
  - Runs C(imagetrust apply --json --diff) (or C(check --json)) and reports
    C(changed) from the tool's own report, a per-file C(diff) (policy.json,
    registries.d, key files) for C(--diff), the tool's warnings, and its error
    message on failure.
  - In check mode, apply runs as C(apply --dry-run): nothing is written, and
    C(changed) is what the real run reports.
options:
  command:
    description: The CLI as an argument list, e.g. C([/usr/local/bin/imagetrust]).
    type: list
    elements: str
    required: true
  action:
    description: C(apply) converges the host; C(check) reports drift (never fails on drift; see C(drifted)).
    type: str
    choices: [apply, check]
    default: apply
  root:
    description: Host root (C(--root)).
    type: str
    default: /
  config:
    description: Trust file (C(--config)) for C(check), or for C(apply) without C(trust).
    type: str
  trust:
    description:
      - The trust file as data. The module dry-runs it from a scratch directory first (a bad one fails before anything is written),
        then installs it as C(config_dir/trust.yaml) (YAML in JSON form) with C(key_files) in C(config_dir/keys), and applies it.
      - If apply fails (or C(--verify) refuses), the previous trust file is put back.
    type: dict
  key_files:
    description: Public keys by file name, installed in C(config_dir/keys).
    type: dict
    default: {}
  config_dir:
    description: Where C(trust) and C(key_files) are installed, as a path on this machine (below the root).
    type: path
  dry_run:
    description: Run apply with C(--dry-run) even outside check mode (the candidate check).
    type: bool
    default: false
  verify:
    description: Run C(apply --verify) (test pulls before and after installing).
    type: bool
    default: false
  report_diff:
    description: Return the per-file diff.
    type: bool
    default: true
  report_changed:
    description: Report C(changed); false for a dry run whose change another task reports.
    type: bool
    default: true
  extra_args:
    description: More arguments for the CLI.
    type: list
    elements: str
    default: []
author: imagetrust contributors
"""

RETURN = r"""
files:
  description: The files apply wrote (or would write), with their action.
  returned: action=apply
  type: list
drift:
  description: check's drift entries (path, reasons, changes).
  returned: action=check
  type: list
drifted:
  description: Whether check found drift (exit 2).
  returned: action=check
  type: bool
drift_lines:
  description: One line per drifted file, as the journal shows it.
  returned: action=check
  type: list
report:
  description: The tool's whole --json output.
  returned: always
  type: dict
"""

import json
import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule


def change_line(change):
    return change.get("summary") or change.get("what", "")


def drift_line(entry):
    line = "%s: %s" % (entry.get("path"), ", ".join(entry.get("reasons", [])))
    if entry.get("detail"):
        line += " (%s)" % entry["detail"]
    changes = entry.get("changes") or []
    if changes:
        line += ": " + "; ".join(change_line(c) for c in changes)
    return line


HEADER = "# Managed by Ansible (role imagetrust): the trust file, as YAML in JSON form.\n"


def trust_text(trust):
    return HEADER + json.dumps(trust, indent=2) + "\n"


def read_text(path):
    try:
        with open(path, "r") as f:
            return f.read()
    except (IOError, OSError):
        return None


def write_text(path, text):
    if read_text(path) == text:
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.rename(tmp, path)


def write_config(directory, trust, key_files):
    if not os.path.isdir(os.path.join(directory, "keys")):
        os.makedirs(os.path.join(directory, "keys"), 0o755)
    for name, text in key_files.items():
        write_text(os.path.join(directory, "keys", name), text)
    write_text(os.path.join(directory, "trust.yaml"), trust_text(trust))


def config_changes(directory, trust, key_files):
    """The trust file and key files that differ on the host, as (path, before, after)."""
    wanted = [(os.path.join(directory, "keys", name), text) for name, text in sorted(key_files.items())]
    wanted.append((os.path.join(directory, "trust.yaml"), trust_text(trust)))
    return [(path, read_text(path), text) for path, text in wanted if read_text(path) != text]


def run_cli(module, argv, action):
    rc, out, err = module.run_command(argv)
    try:
        report = json.loads(out) if out.strip() else None
    except ValueError:
        report = None
    if isinstance(report, dict) and isinstance(report.get("error"), dict):
        error = report["error"]
        msg = error.get("message", "imagetrust failed")
        if error.get("hint"):
            msg += " (%s)" % error["hint"]
        return rc, report, "imagetrust %s failed (exit %d): %s" % (action, rc, msg)
    if not isinstance(report, dict):
        return rc, report, "imagetrust %s failed (exit %d): %s" % (action, rc, (out + " " + err).strip() or "no output")
    return rc, report, None


def verify_failure(rc, report):
    # apply --verify: enforcement not confirmed (3) or inconclusive (4); nothing was installed, or it was rolled back.
    lines = []
    for name in ("preflight", "postflight"):
        flight = report.get(name) or {}
        for result in flight.get("results") or []:
            if result.get("outcome") != "confirmed":
                lines.append("%s %s %s: %s" % (name, result.get("engine", ""), result.get("image", ""), result.get("outcome", "")) + (" (%s)" % result["reason"] if result.get("reason") else ""))
    state = "rolled back" if report.get("rolledBack") else "nothing was installed"
    return "imagetrust apply --verify failed (exit %d): enforcement not confirmed, %s. %s" % (rc, state, "; ".join(lines))


def file_diffs(files):
    return [
        dict(
            before_header=f["path"] if f.get("before") is not None else "/dev/null",
            after_header=f["path"] if f.get("after") is not None else "/dev/null",
            before=f.get("before") or "",
            after=f.get("after") or "",
        )
        for f in files
        if "before" in f and not f["path"].endswith("/state.json")
    ]


def bad_key_file_names(key_files):
    """key_files names that are not plain file names: each is joined to a keys directory, so no /, no .., nothing hidden."""
    bad = []
    for name in sorted(key_files, key=str):
        if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name or name.startswith(".") or any(ord(c) < 32 or ord(c) == 127 for c in name):
            bad.append(name)
    return bad


def converge(module, p):
    """apply with trust: candidate dry run, then install the trust file and keys, then apply."""
    bad = bad_key_file_names(p["key_files"])
    if bad:
        # Before anything is written, in check mode too (the candidate copy goes to a scratch directory).
        module.fail_json(msg="key_files: %s: only plain file names are allowed (they are written to %s/keys): no '/', no '..', no leading '.'" % (", ".join(repr(n) for n in bad), p["config_dir"]))
    base = list(p["command"]) + ["apply", "--json", "--root", p["root"]]
    scratch = tempfile.mkdtemp(prefix="imagetrust-candidate-")
    try:
        write_config(scratch, p["trust"], p["key_files"])
        rc, candidate, error = run_cli(module, base + ["--config", os.path.join(scratch, "trust.yaml"), "--dry-run", "--diff"] + p["extra_args"], "apply")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if error:
        module.fail_json(msg=error, exit_code=rc, report=candidate)

    directory = p["config_dir"]
    config = config_changes(directory, p["trust"], p["key_files"])
    config_diffs = [dict(before_header=path if before is not None else "/dev/null", after_header=path, before=before or "", after=after) for path, before, after in config]
    if module.check_mode:
        for warning in candidate.get("warnings") or []:
            module.warn(warning)
        changed = bool(candidate.get("changed")) or bool(config)
        module.exit_json(changed=changed, files=candidate.get("files") or [], config_files=[c[0] for c in config], report=candidate, diff=config_diffs + file_diffs(candidate.get("files") or []))

    previous = read_text(os.path.join(directory, "trust.yaml"))
    write_config(directory, p["trust"], p["key_files"])
    argv = base + ["--config", os.path.join(directory, "trust.yaml")] + (["--verify"] if p["verify"] else ["--diff"]) + p["extra_args"]
    rc, report, error = run_cli(module, argv, "apply")
    if error is None and rc != 0:
        error = verify_failure(rc, report)
    if error:
        # The trust file goes back, so that it still describes what the host has.
        trust_path = os.path.join(directory, "trust.yaml")
        if previous is None:
            os.unlink(trust_path)
        else:
            write_text(trust_path, previous)
        module.fail_json(msg=error, exit_code=rc, report=report)
    for warning in report.get("warnings") or []:
        module.warn(warning)
    files = report.get("files") or (report.get("apply") or {}).get("files") or []
    changed = bool(report.get("changed")) or bool(config)
    # apply --verify reports no contents; what it installed is the candidate's plan, whose dry run had them.
    shown = (candidate.get("files") or []) if p["verify"] and report.get("changed") else files
    module.exit_json(changed=changed, files=files, config_files=[c[0] for c in config], report=report, exit_code=rc, diff=config_diffs + file_diffs(shown))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            command=dict(type="list", elements="str", required=True),
            action=dict(type="str", choices=["apply", "check"], default="apply"),
            root=dict(type="str", default="/"),
            config=dict(type="str"),
            trust=dict(type="dict"),
            key_files=dict(type="dict", default={}),
            config_dir=dict(type="path"),
            dry_run=dict(type="bool", default=False),
            verify=dict(type="bool", default=False),
            report_diff=dict(type="bool", default=True),
            report_changed=dict(type="bool", default=True),
            extra_args=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
        required_if=[("action", "check", ["config"])],
        required_by={"trust": ["config_dir"]},
    )
    p = module.params
    executable = p["command"][0]
    found = module.get_bin_path(executable) if os.sep not in executable else (executable if os.access(executable, os.X_OK) else None)
    if not found:
        module.fail_json(msg="imagetrust not found at %s" % executable)

    if p["action"] == "apply" and p["trust"] is not None:
        converge(module, p)

    argv = list(p["command"]) + [p["action"], "--json", "--root", p["root"], "--config", p["config"]]
    dry_run = p["action"] == "apply" and (p["dry_run"] or module.check_mode)
    if p["action"] == "apply":
        if dry_run:
            argv.append("--dry-run")
        elif p["verify"]:
            argv.append("--verify")
        if not (p["verify"] and not dry_run):
            argv.append("--diff")
    argv += p["extra_args"]

    rc, report, error = run_cli(module, argv, p["action"])
    if error:
        module.fail_json(msg=error, exit_code=rc, report=report)
    for warning in report.get("warnings") or []:
        module.warn(warning)

    if p["action"] == "check":
        if rc not in (0, 2):
            module.fail_json(msg="imagetrust check failed (exit %d)" % rc, exit_code=rc, report=report)
        drift = report.get("drift") or []
        module.exit_json(changed=False, exit_code=rc, drifted=rc == 2, drift=drift, drift_lines=[drift_line(d) for d in drift], report=report)

    if rc != 0:
        module.fail_json(msg=verify_failure(rc, report), exit_code=rc, report=report)
    files = report.get("files") or (report.get("apply") or {}).get("files") or []
    changed = bool(report.get("changed"))
    module.exit_json(changed=changed and p["report_changed"], files=files, report=report, exit_code=rc, diff=file_diffs(files) if p["report_diff"] else [])


if __name__ == "__main__":
    main()
