package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strings"
	"time"

	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/mask"
	"github.com/wardenhq/warden/internal/policy"
)

// preflight checks what `warden config validate` promises and `serve`
// needs before it opens a store or writes an audit entry: the listen
// addresses resolve, the masking profiles compile, and the policy file
// the config names loads, compiles and names only defined profiles.
// Every error names the file and, where known, the line and key.
func preflight(ctx context.Context, cfg *config.Config) error {
	var errs []error
	for _, l := range []struct{ key, addr string }{{"listen", cfg.Listen}, {"admin_listen", cfg.AdminListen}} {
		if err := resolvable(ctx, l.addr); err != nil {
			errs = append(errs, cfg.KeyError(l.key, err))
		}
	}
	mcfg := mask.Config{}
	if cfg.Masking != nil {
		mcfg = *cfg.Masking
	}
	// The fingerprint key does not change what compiles; the real one
	// lives in the data dir, which validation must not create.
	masks, err := mask.New(mcfg, []byte("preflight-only-key-not-for-use!!"))
	if err != nil {
		errs = append(errs, cfg.KeyError("masking", err))
	}
	if cfg.Policy != nil {
		p, err := policy.LoadFile(cfg.Policy.File)
		switch {
		case err != nil:
			errs = append(errs, policyLoadError(cfg, err))
		case masks != nil:
			errs = append(errs, checkMaskProfiles(p, masks))
		}
	}
	return errors.Join(errs...)
}

// policyLoadError points a policy file that cannot be read at the
// config's policy.file key; errors inside the policy name their own line.
func policyLoadError(cfg *config.Config, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return cfg.KeyError("policy.file", fmt.Errorf("cannot read the policy file: %w", pe))
	}
	return err
}

// resolvable checks that a listen address's host is an IP address, empty
// (all interfaces) or a name that resolves; config.Validate has checked
// the host:port form and the port.
func resolvable(ctx context.Context, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" || net.ParseIP(strings.Trim(host, "[]")) != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := net.DefaultResolver.LookupHost(ctx, host); err != nil {
		return fmt.Errorf("cannot listen on %q: host %q does not resolve (%v)", addr, host, err)
	}
	return nil
}

// checkMaskProfiles refuses a policy that names a masking profile the
// configuration does not define, at the line of the rule's mask key.
func checkMaskProfiles(p *policy.Policy, masks *mask.Set) error {
	var errs []error
	for i, r := range p.Rules() {
		if r.Mask == "" || r.Mask == policy.MaskNone {
			continue // the default profile always exists; none is no profile
		}
		if _, ok := masks.Profile(r.Mask); !ok {
			errs = append(errs, p.RuleError(i, "mask", fmt.Sprintf("names masking profile %q, which masking.profiles does not define (defined: %s)", r.Mask, strings.Join(masks.Names(), ", "))))
		}
	}
	return errors.Join(errs...)
}
