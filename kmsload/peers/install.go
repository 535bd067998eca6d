package peers

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// LocalKMSVersion is the pinned local-kms module version (a pseudo-version
// of nsmithuk/local-kms; the module proxy serves it).
const LocalKMSVersion = "v0.0.0-20260228092603-2a5e92d09ab6"

// InstallLocalKMS installs local-kms at LocalKMSVersion with `go install`
// into gobin/local-kms-VERSION/ (once) and returns the binary's path.
func InstallLocalKMS(gobin string) (string, error) {
	dir, err := filepath.Abs(filepath.Join(gobin, "local-kms-"+LocalKMSVersion))
	if err != nil {
		return "", err
	}
	exe := filepath.Join(dir, "local-kms")
	if fileExists(exe) {
		return exe, nil
	}
	cmd := exec.Command("go", "install", "github.com/nsmithuk/local-kms@"+LocalKMSVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("peers: go install local-kms@%s: %v\n%s", LocalKMSVersion, err, out)
	}
	return exe, nil
}

// GoBuild runs `go build -o out args...` in the current directory (the
// checkout) and returns out as an absolute path.
func GoBuild(out string, args ...string) (string, error) {
	abs, err := filepath.Abs(out)
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", append([]string{"build", "-o", abs}, args...)...)
	if o, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("peers: go build %s: %v\n%s", strings.Join(args, " "), err, o)
	}
	return abs, nil
}

// GoTestBinary compiles pkg's tests into out (`go test -c`) and returns
// out as an absolute path.
func GoTestBinary(out, pkg string) (string, error) {
	abs, err := filepath.Abs(out)
	if err != nil {
		return "", err
	}
	if o, err := exec.Command("go", "test", "-c", "-o", abs, pkg).CombinedOutput(); err != nil {
		return "", fmt.Errorf("peers: go test -c %s: %v\n%s", pkg, err, o)
	}
	return abs, nil
}
