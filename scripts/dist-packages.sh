#!/usr/bin/env bash
# npm run dist's second half: the .deb and the .rpm around dist-bin/imagetrust-linux-x64
# (scripts/dist.ts makes it), built with dpkg-deb and rpmbuild from one staging tree:
#   /usr/bin/imagetrust                          the single executable, unstripped
#   /usr/share/man/man1/imagetrust.1.gz          from the commands' help (scripts/dist-man.ts)
#   bash and zsh completion                      from `imagetrust completion bash|zsh`
#   /usr/lib/systemd/system/imagetrust-check.*   the drift check, installed disabled
#   /usr/share/imagetrust/templates/             the annotated trust file, units, nginx example
#   /etc/imagetrust/                             empty: the trust file is the admin's (imagetrust init)
# Then lintian and rpmlint: warnings are shown, an error fails the build.
# Out: dist-bin/imagetrust_VERSION_amd64.deb, dist-bin/imagetrust-VERSION-1.x86_64.rpm
set -euo pipefail
cd "$(dirname "$0")/.."
bin=dist-bin/imagetrust-linux-x64
[ -x "$bin" ] || { echo "dist-packages: $bin missing: run npm run dist" >&2; exit 1; }
version="$(node -p 'require("./package.json").version')"
work=build/pkg
rm -rf "$work"
stage="$work/stage"
mkdir -p "$stage"

# The staging tree both packages share (paths as Debian has them; the rpm moves the zsh file).
install -D -m 0755 "$bin" "$stage/usr/bin/imagetrust"
mkdir -p "$stage/usr/share/man/man1"
node --import tsx scripts/dist-man.ts "$work/imagetrust.1"
gzip -9n -c "$work/imagetrust.1" >"$stage/usr/share/man/man1/imagetrust.1.gz"
install -d "$stage/usr/share/bash-completion/completions" "$stage/usr/share/zsh/vendor-completions"
"$bin" completion bash >"$stage/usr/share/bash-completion/completions/imagetrust"
"$bin" completion zsh >"$stage/usr/share/zsh/vendor-completions/_imagetrust"
install -d "$stage/usr/lib/systemd/system"
for unit in imagetrust-check.service imagetrust-check.timer; do
  # The templates run /usr/local/bin/imagetrust (the npm form); the package's is /usr/bin/imagetrust.
  sed 's|/usr/local/bin/imagetrust|/usr/bin/imagetrust|g' "templates/$unit" >"$stage/usr/lib/systemd/system/$unit"
  chmod 0644 "$stage/usr/lib/systemd/system/$unit"
done
grep -q '^ExecStart=/usr/bin/imagetrust ' "$stage/usr/lib/systemd/system/imagetrust-check.service" \
  || { echo "dist-packages: imagetrust-check.service does not run /usr/bin/imagetrust" >&2; exit 1; }
install -d "$stage/usr/share/imagetrust/templates"
install -m 0644 templates/* "$stage/usr/share/imagetrust/templates/"
install -d -m 0755 "$stage/etc/imagetrust"
install -D -m 0644 LICENSE "$stage/usr/share/doc/imagetrust/LICENSE"
install -m 0644 README.md "$stage/usr/share/doc/imagetrust/README.md"

build_deb() {
  local root="$work/deb"
  cp -a "$stage" "$root"
  rm "$root/usr/share/doc/imagetrust/LICENSE" # Debian: the license is in copyright
  install -m 0644 packaging/deb/copyright "$root/usr/share/doc/imagetrust/copyright"
  # A native package's changelog.gz is read in Debian's format: one entry pointing at the project's.
  printf '%s\n' "imagetrust ($version) unstable; urgency=medium" '' \
    "  * imagetrust $version: see CHANGELOG.md.gz beside this file." '' \
    " -- imagetrust authors <imagetrust@example.com>  $(date -R -u -d "@$(git log -1 --format=%ct)")" \
    | gzip -9n >"$root/usr/share/doc/imagetrust/changelog.gz"
  gzip -9n -c CHANGELOG.md >"$root/usr/share/doc/imagetrust/CHANGELOG.md.gz"
  install -D -m 0644 packaging/deb/lintian-overrides "$root/usr/share/lintian/overrides/imagetrust"
  install -d "$root/DEBIAN"
  install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$root/DEBIAN/"
  local size
  size="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"
  cat >"$root/DEBIAN/control" <<EOF
Package: imagetrust
Version: $version
Architecture: amd64
Maintainer: imagetrust authors <imagetrust@example.com>
Installed-Size: $size
Depends: libc6 (>= 2.28), libgcc-s1, libstdc++6
Suggests: podman | skopeo | cri-o, gnupg
Section: admin
Priority: optional
Homepage: https://github.com/imagetrust/imagetrust
Description: run only container images signed by keys you trust
 imagetrust writes containers-policy.json, registries.d and the trusted
 public keys so that Podman, CRI-O and skopeo run only container images
 signed by keys you trust, from one trust file, and proves it with real
 pulls. A single executable: no Node.js needed on the host.
 .
 Installing or removing the package never changes policy.json,
 registries.d or keys; the drift-check timer is installed disabled;
 /var/lib/imagetrust (apply's backups) is kept on purge unless
 IMAGETRUST_PURGE_STATE=yes.
EOF
  (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum >DEBIAN/md5sums)
  # gzip: seconds where xz takes minutes (the node binary is ~95 MB), for a few MB more;
  # zstd would be faster still, but lintian (Debian 12) calls a zstd .deb malformed.
  dpkg-deb --root-owner-group -Zgzip -z6 --build "$root" "dist-bin/imagetrust_${version}_amd64.deb" >/dev/null
}

build_rpm() {
  local top="$PWD/$work/rpm" stage_rpm="$PWD/$work/rpm-stage"
  cp -a "$stage" "$stage_rpm"
  install -d "$stage_rpm/usr/share/zsh/site-functions"
  mv "$stage_rpm/usr/share/zsh/vendor-completions/_imagetrust" "$stage_rpm/usr/share/zsh/site-functions/_imagetrust"
  rmdir "$stage_rpm/usr/share/zsh/vendor-completions"
  rpmbuild -bb --quiet packaging/rpm/imagetrust.spec \
    --define "_topdir $top" --define "imagetrust_version $version" --define "imagetrust_stage $stage_rpm" --define "imagetrust_date $(LC_ALL=C date -u -d "@$(git log -1 --format=%ct)" "+%a %b %d %Y")" \
    --define '_binary_payload w3.zstdio' --target x86_64-linux >/dev/null
  cp "$top/RPMS/x86_64/imagetrust-${version}-1.x86_64.rpm" dist-bin/
}

build_deb
build_rpm
deb="dist-bin/imagetrust_${version}_amd64.deb"
rpm="dist-bin/imagetrust-${version}-1.x86_64.rpm"

# lintian: E: lines fail; rpmlint: its exit status fails on errors (badness).
lintian_out="$(lintian --allow-root --tag-display-limit 0 "$deb" 2>&1 || true)"
[ -z "$lintian_out" ] || echo "$lintian_out" | sed 's/^/lintian: /'
if echo "$lintian_out" | grep -q '^E: '; then echo "dist-packages: lintian reports errors" >&2; exit 1; fi
rpmlint -r packaging/rpm/rpmlintrc "$rpm" | sed 's/^/rpmlint: /' || { echo "dist-packages: rpmlint reports errors" >&2; exit 1; }

for f in "$bin" "$deb" "$rpm"; do
  printf '%s: %s MiB\n' "$f" "$(du -m --apparent-size "$f" | cut -f1)"
done
