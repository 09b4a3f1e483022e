// policy-oracle asks one containers/image version what it does with a host's
// trust configuration: which policy.json and registries.d files it reads (or
// the load error, worded as the engine words it), which lookaside it uses for
// an image, and whether its policy allows that image; with --pull it really
// copies the image to a dir: under that policy.
//
// It is compiled once per containers/image version (see lab/oracle/c-image-*):
// scripts/setup.sh copies this file next to that version's go.mod and, for
// versions published as go.podman.io/image/v5, rewrites the import path.
// Everything it reports comes from the library itself: the files it read are
// observed with inotify while the library loads them, never computed here.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/containers/image/v5/copy"
	"github.com/containers/image/v5/docker"
	"github.com/containers/image/v5/image"
	"github.com/containers/image/v5/signature"
	"github.com/containers/image/v5/transports/alltransports"
	"github.com/containers/image/v5/types"
	"github.com/sirupsen/logrus"
)

type options struct {
	policy      string
	registriesD string
	root        string
	pull        string
	watch       multiFlag
	load        bool
	debug       bool
	timeout     time.Duration
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// answer is the JSON the oracle prints; a field is absent when that step did not run.
type answer struct {
	Library         string   `json:"library"`
	Version         string   `json:"version"`
	Image           string   `json:"image,omitempty"`
	PolicyFiles     []string `json:"policyFiles"`
	RegistriesFiles []string `json:"registriesFiles"`
	Opened          []string `json:"opened"`
	PolicyError     string   `json:"policyError,omitempty"`
	RegistriesError string   `json:"registriesError,omitempty"`
	Lookaside       string   `json:"lookaside,omitempty"`
	Allowed         *bool    `json:"allowed,omitempty"`
	Reason          string   `json:"reason,omitempty"`
	Pulled          *bool    `json:"pulled,omitempty"`
	PullError       string   `json:"pullError,omitempty"`
}

func main() {
	opts, args := parseFlags()
	if opts.debug {
		logrus.SetLevel(logrus.DebugLevel)
	} else {
		logrus.SetLevel(logrus.ErrorLevel)
	}
	library, version := libraryVersion()
	if opts.load {
		os.Exit(loadEach(library, version, args))
	}
	if len(args) > 1 {
		fmt.Fprintln(os.Stderr, "policy-oracle: at most one image reference")
		os.Exit(64)
	}
	a := answer{Library: library, Version: version, PolicyFiles: []string{}, RegistriesFiles: []string{}, Opened: []string{}}
	if len(args) == 1 {
		a.Image = args[0]
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.timeout)
	defer cancel()
	evaluate(ctx, opts, &a)
	out, _ := json.Marshal(a)
	fmt.Println(string(out))
}

func parseFlags() (options, []string) {
	var o options
	flag.StringVar(&o.policy, "policy", "", "policy.json to use (default: this version's own lookup)")
	flag.StringVar(&o.registriesD, "registries-d", "", "registries.d directory to use (default: this version's own lookup)")
	flag.StringVar(&o.root, "root", "", "prefix for the library's implicit absolute paths (/etc/containers/...)")
	flag.StringVar(&o.pull, "pull", "", "copy the image to dir:PATH under the policy")
	flag.Var(&o.watch, "watch", "another directory whose file opens are reported (repeatable)")
	flag.BoolVar(&o.load, "load", false, "load each policy file named as an argument; one JSON line each")
	flag.BoolVar(&o.debug, "debug", false, "the library's debug log on stderr")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Second, "deadline for the whole evaluation")
	version := flag.Bool("version", false, "print the containers/image version and exit")
	flag.Parse()
	if *version {
		library, v := libraryVersion()
		fmt.Printf("policy-oracle %s %s\n", library, v)
		os.Exit(0)
	}
	return o, flag.Args()
}

// libraryVersion names the containers/image module this binary was built with.
func libraryVersion() (string, string) {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown", "unknown"
	}
	for _, dep := range info.Deps {
		if strings.HasSuffix(dep.Path, "/image/v5") {
			return dep.Path, dep.Version
		}
	}
	return "unknown", "unknown"
}

func (o options) systemContext() *types.SystemContext {
	return &types.SystemContext{
		SignaturePolicyPath:          o.policy,
		RegistriesDirPath:            o.registriesD,
		RootForImplicitAbsolutePaths: o.root,
		DockerInsecureSkipTLSVerify:  types.OptionalBoolTrue,
		OCIInsecureSkipTLSVerify:     true,
	}
}

// evaluate runs the same steps an engine does for a pull, recording each result.
func evaluate(ctx context.Context, o options, a *answer) {
	sys := o.systemContext()
	watcher := watchOpens(o.watchedDirs())
	defer func() { a.Opened = watcher.opened(); classifyOpened(a) }()

	policy, err := signature.DefaultPolicy(sys)
	if err != nil {
		a.PolicyError = err.Error()
		return
	}
	pc, err := signature.NewPolicyContext(policy)
	if err != nil {
		a.PolicyError = err.Error()
		return
	}
	defer pc.Destroy()
	if a.Image == "" {
		return
	}
	ref, err := alltransports.ParseImageName(a.Image)
	if err != nil {
		a.Reason = "bad image reference: " + err.Error()
		return
	}
	if ref.Transport().Name() == "docker" {
		lookaside(sys, ref, a)
		if a.RegistriesError != "" {
			return
		}
	}
	judge(ctx, sys, pc, ref, a)
	if o.pull != "" {
		pull(ctx, sys, pc, ref, o.pull, a)
	}
}

func lookaside(sys *types.SystemContext, ref types.ImageReference, a *answer) {
	url, err := docker.SignatureStorageBaseURL(sys, ref, false)
	if err != nil {
		a.RegistriesError = err.Error()
		return
	}
	if url != nil {
		a.Lookaside = url.String()
	}
}

func judge(ctx context.Context, sys *types.SystemContext, pc *signature.PolicyContext, ref types.ImageReference, a *answer) {
	src, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		a.Reason = "cannot read the image: " + err.Error()
		return
	}
	defer src.Close()
	allowed, err := pc.IsRunningImageAllowed(ctx, image.UnparsedInstance(src, nil))
	a.Allowed = &allowed
	if err != nil {
		a.Reason = err.Error()
	}
}

func pull(ctx context.Context, sys *types.SystemContext, pc *signature.PolicyContext, src types.ImageReference, dest string, a *answer) {
	destRef, err := alltransports.ParseImageName("dir:" + dest)
	pulled := false
	a.Pulled = &pulled
	if err != nil {
		a.PullError = err.Error()
		return
	}
	_, err = copy.Image(ctx, pc, destRef, src, &copy.Options{SourceCtx: sys, DestinationCtx: sys, ReportWriter: io.Discard})
	if err != nil {
		a.PullError = err.Error()
		return
	}
	pulled = true
}

// loadEach loads policy files as DefaultPolicy would load an explicit path.
func loadEach(library, version string, files []string) int {
	for _, file := range files {
		line := map[string]any{"library": library, "version": version, "file": file, "loads": true}
		policy, err := signature.NewPolicyFromFile(file)
		if err == nil {
			var pc *signature.PolicyContext
			if pc, err = signature.NewPolicyContext(policy); err == nil {
				_ = pc.Destroy()
			}
		}
		if err != nil {
			line["loads"] = false
			line["error"] = err.Error()
		}
		out, _ := json.Marshal(line)
		fmt.Println(string(out))
	}
	return 0
}

// watchedDirs are the directories where the library may look for its files:
// under --root (or /), the containers config trees; and the invoking user's.
func (o options) watchedDirs() []string {
	root := o.root
	if root == "" {
		root = "/"
	}
	dirs := []string{
		filepath.Join(root, "etc/containers"), filepath.Join(root, "usr/share/containers"),
		filepath.Join(root, "usr/local/etc/containers"),
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".config/containers"))
	}
	if xdg := os.Getenv("XDG_CONFIG_HOME"); xdg != "" {
		dirs = append(dirs, filepath.Join(xdg, "containers"))
	}
	if env := os.Getenv("CONTAINERS_POLICY_JSON"); env != "" {
		dirs = append(dirs, filepath.Dir(env))
	}
	for _, explicit := range []string{o.policy} {
		if explicit != "" {
			dirs = append(dirs, filepath.Dir(explicit))
		}
	}
	if o.registriesD != "" {
		dirs = append(dirs, o.registriesD)
	}
	return append(dirs, o.watch...)
}

// classifyOpened sorts the observed opens into policy and registries.d files.
func classifyOpened(a *answer) {
	for _, file := range a.Opened {
		dir := filepath.Base(filepath.Dir(file))
		switch {
		case strings.HasPrefix(dir, "registries") && strings.Contains(dir, ".d") || isUnderRegistriesD(file):
			a.RegistriesFiles = append(a.RegistriesFiles, file)
		case strings.HasSuffix(file, ".json"):
			a.PolicyFiles = append(a.PolicyFiles, file)
		}
	}
}

func isUnderRegistriesD(file string) bool {
	for _, part := range strings.Split(filepath.Dir(file), string(filepath.Separator)) {
		if strings.HasPrefix(part, "registries") && strings.HasSuffix(part, ".d") {
			return true
		}
	}
	return false
}

// openWatcher reports the files opened in a set of directory trees (inotify IN_OPEN).
type openWatcher struct {
	fd   int
	dirs map[int32]string
}

func watchOpens(roots []string) *openWatcher {
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		return &openWatcher{fd: -1}
	}
	w := &openWatcher{fd: fd, dirs: map[int32]string{}}
	for _, root := range roots {
		_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() || len(w.dirs) > 4096 {
				return nil
			}
			if wd, err := syscall.InotifyAddWatch(fd, path, syscall.IN_OPEN); err == nil {
				w.dirs[int32(wd)] = path
			}
			return nil
		})
	}
	return w
}

func (w *openWatcher) opened() []string {
	files := []string{}
	if w.fd < 0 {
		return files
	}
	defer syscall.Close(w.fd)
	seen := map[string]bool{}
	buf := make([]byte, 64*1024)
	for {
		n, err := syscall.Read(w.fd, buf)
		if err != nil || n <= 0 {
			return files
		}
		for offset := 0; offset+syscall.SizeofInotifyEvent <= n; {
			event := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[offset]))
			nameBytes := buf[offset+syscall.SizeofInotifyEvent : offset+syscall.SizeofInotifyEvent+int(event.Len)]
			offset += syscall.SizeofInotifyEvent + int(event.Len)
			name := strings.TrimRight(string(nameBytes), "\x00")
			if name == "" || event.Mask&syscall.IN_ISDIR != 0 {
				continue
			}
			file := filepath.Join(w.dirs[int32(event.Wd)], name)
			if !seen[file] {
				seen[file] = true
				files = append(files, file)
			}
		}
	}
}
