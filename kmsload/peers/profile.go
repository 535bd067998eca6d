package peers

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/trentkms/trent/kmsload"
)

// Profile takes CPU profiles of Trent's processes (t must have been
// started with a pprof base) under the load l (kmspeers: Encrypt at 16
// clients unless -profile-load says otherwise): a warm-up, then the load
// for d plus a margin while each process profiles itself for d. It writes dir/profile-hsm-N.pb.gz and
// dir/profile-host-1.pb.gz and returns their paths and the load's
// figures (not a round's: profiling costs CPU). The requests the profiles
// cover are about r.Throughput × d.
func Profile(ctx context.Context, t *Target, l Load, d time.Duration, dir string) ([]string, *kmsload.Result, error) {
	if t.PprofBase == 0 {
		return nil, nil, fmt.Errorf("peers: %s has no pprof listeners", t.Name)
	}
	lc := t.Load
	lc.Op, lc.Clients, lc.Client = l.Op, l.Clients, kmsload.ClientSigner
	lc.EncryptionContext = map[string]string{"bench": "kms"}
	lc.Duration = 2 * time.Second
	if _, err := kmsload.Run(ctx, lc); err != nil {
		return nil, nil, err
	}
	names := make([]string, 0, t.HSMs+1)
	for i := range t.HSMs {
		names = append(names, fmt.Sprintf("hsm-%d", i+1))
	}
	names = append(names, "host-1")
	lc.Duration = d + 3*time.Second
	var wg sync.WaitGroup
	var r *kmsload.Result
	var loadErr error
	wg.Go(func() {
		r, loadErr = kmsload.Run(ctx, lc)
		if loadErr == nil && r.Errors > 0 {
			loadErr = fmt.Errorf("peers: profile load: %d errors: %v", r.Errors, r.ErrorTexts)
		}
	})
	time.Sleep(time.Second)
	paths := make([]string, len(names))
	errs := make([]error, len(names))
	for i, n := range names {
		paths[i] = filepath.Join(dir, "profile-"+n+".pb.gz")
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(t.PprofBase+i))
		url := "http://" + addr + "/debug/pprof/profile?seconds=" + strconv.Itoa(int(d.Seconds()))
		wg.Go(func() { errs[i] = fetch(ctx, url, paths[i]) })
	}
	wg.Wait()
	for _, err := range append(errs, loadErr) {
		if err != nil {
			return nil, nil, err
		}
	}
	return paths, r, nil
}

func fetch(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("peers: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("peers: %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("peers: %w", err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("peers: %s: %w", url, err)
	}
	return f.Close()
}
