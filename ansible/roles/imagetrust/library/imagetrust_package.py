#!/usr/bin/python3
# -*- coding: utf-8 -*-
# Copyright: imagetrust contributors. Apache-2.0.
"""Installs imagetrust's .deb or .rpm when the installed version is not the package's."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: imagetrust_package
short_description: Install imagetrust's .deb or .rpm, idempotently
description:
  - Compares the installed version of the package (C(dpkg-query), C(rpm -q)) with the
    version of the package file (C(dpkg-deb --field), C(rpm -qp)) and installs the file
    (C(dpkg -i), C(rpm -U)) only when they differ, or when C(force) is set (the file
    itself changed).
  - In check mode nothing is installed and C(changed) is what the real run reports; a
    package file that is not on the host yet (its copy was only checked) counts as a change.
options:
  kind:
    description: The package format.
    type: str
    choices: [deb, rpm]
    required: true
  path:
    description: The package file on the host.
    type: path
    required: true
  force:
    description: Install even when the versions are equal (the package file changed).
    type: bool
    default: false
author: imagetrust contributors
"""

RETURN = r"""
installed:
  description: The version installed before (null when none was).
  returned: always
  type: str
version:
  description: The package file's version (null in check mode when the file is not there yet).
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

QUERY = {
    "deb": {"installed": ["dpkg-query", "--show", "--showformat=${db:Status-Abbrev}\t${Version}"], "file": ["dpkg-deb", "--field"]},
    "rpm": {"installed": ["rpm", "-q", "--queryformat", "ii \t%{EPOCHNUM}:%{VERSION}-%{RELEASE}"], "file": ["rpm", "-qp", "--queryformat"]},
}


def run(module, argv, environ=None):
    rc, out, err = module.run_command(argv, environ_update=environ or {})
    if rc != 0:
        module.fail_json(msg="%s failed (exit %d): %s" % (" ".join(argv), rc, (err or out).strip()), rc=rc)
    return out.strip()


def file_name_and_version(module, kind, path):
    if kind == "deb":
        name, version = run(module, ["dpkg-deb", "--field", path, "Package", "Version"]).splitlines()
        return name.split(":", 1)[1].strip(), version.split(":", 1)[1].strip()
    name, version = run(module, ["rpm", "-qp", "--queryformat", "%{NAME}\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}", path]).split("\t")
    return name, version


def installed_version(module, kind, name):
    rc, out, _ = module.run_command(QUERY[kind]["installed"] + [name])
    if rc != 0 or "\t" not in out:
        return None
    status, version = out.strip().split("\t", 1)
    # dpkg: "ii" is installed; anything else (rc: removed, conffiles left; iU: unpacked) is not.
    return version if status.strip() == "ii" else None


def install(module, kind, path):
    if kind == "deb":
        # Keep a locally edited conffile (/etc/imagetrust/...) and never prompt.
        run(module, ["dpkg", "--force-confdef", "--force-confold", "-i", path], {"DEBIAN_FRONTEND": "noninteractive"})
    else:
        run(module, ["rpm", "-U", "--replacepkgs", "--oldpackage", path])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            kind=dict(type="str", choices=["deb", "rpm"], required=True),
            path=dict(type="path", required=True),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    kind, path, force = module.params["kind"], module.params["path"], module.params["force"]
    if not os.path.exists(path):
        if module.check_mode:
            # Its copy was only checked: the real run copies it, then installs it.
            module.exit_json(changed=True, installed=None, version=None, msg="would copy and install %s" % os.path.basename(path))
        module.fail_json(msg="no package file at %s" % path)
    name, version = file_name_and_version(module, kind, path)
    installed = installed_version(module, kind, name)
    changed = force or installed != version
    if changed and not module.check_mode:
        install(module, kind, path)
    module.exit_json(changed=changed, installed=installed, version=version, name=name)


if __name__ == "__main__":
    main()
