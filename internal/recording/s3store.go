package recording

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/wardenhq/warden/internal/config/field"
)

var _ BlobStore = (*S3Store)(nil)

// S3Config is the `recordings.s3:` section: an S3-compatible bucket
// (AWS S3, MinIO, Ceph RGW, versitygw, …).
type S3Config struct {
	// Endpoint is the server URL, e.g. https://s3.eu-west-1.amazonaws.com
	// or http://127.0.0.1:7070. Required.
	Endpoint string `yaml:"endpoint"`
	// Bucket is the bucket name. Required.
	Bucket string `yaml:"bucket"`
	// Prefix is prepended to every object key (e.g. "warden/"). Optional.
	Prefix string `yaml:"prefix"`
	// Region is the bucket's region. Default: discovered, or us-east-1.
	Region string `yaml:"region"`
	// AccessKey is the access key id. Default: $AWS_ACCESS_KEY_ID.
	AccessKey string `yaml:"access_key"`
	// SecretKeyFile holds the secret access key (mode 0600). Default:
	// $AWS_SECRET_ACCESS_KEY. The secret itself is never in the config.
	SecretKeyFile string `yaml:"secret_key_file"`
	// PathStyle forces path-style bucket addressing (most self-hosted
	// servers want it). Default false: automatic.
	PathStyle bool `yaml:"path_style"`
	// CAFile is a PEM bundle to trust instead of the system roots.
	CAFile string `yaml:"ca_file"`
	// CreateBucket creates the bucket at start if it does not exist.
	CreateBucket bool `yaml:"create_bucket"`
	// MaxRetries is how often a failed request is retried. Default 3.
	MaxRetries int `yaml:"max_retries"`
}

// Validate reports every invalid field with its key path.
func (c *S3Config) Validate() error {
	var errs []error
	if c.Endpoint == "" {
		errs = append(errs, field.Errorf("endpoint", "is required"))
	} else if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		errs = append(errs, field.Errorf("endpoint", "must be an http:// or https:// URL with a host and no path, not %q", c.Endpoint))
	}
	if c.Bucket == "" {
		errs = append(errs, field.Errorf("bucket", "is required"))
	}
	if c.Prefix != "" {
		if err := validKey(strings.TrimSuffix(c.Prefix, "/")); err != nil || !strings.HasSuffix(c.Prefix, "/") {
			errs = append(errs, field.Errorf("prefix", "must be key segments of a-z, 0-9, '.', '_' or '-' ending in '/', not %q", c.Prefix))
		}
	}
	if c.MaxRetries < 0 {
		errs = append(errs, field.Errorf("max_retries", "must be >= 0"))
	}
	return errors.Join(errs...)
}

// S3Store keeps objects in an S3-compatible bucket (minio-go).
type S3Store struct {
	c      *minio.Client
	bucket string
	prefix string
}

// NewS3Store connects to the bucket in cfg. It does not contact the
// server unless CreateBucket is set; Probe does.
func NewS3Store(ctx context.Context, cfg S3Config) (*S3Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("recording: s3: %w", err)
	}
	u, _ := url.Parse(cfg.Endpoint)
	ak, sk := cfg.AccessKey, os.Getenv("AWS_SECRET_ACCESS_KEY")
	if ak == "" {
		ak = os.Getenv("AWS_ACCESS_KEY_ID")
	}
	if cfg.SecretKeyFile != "" {
		b, err := os.ReadFile(cfg.SecretKeyFile)
		if err != nil {
			return nil, fmt.Errorf("recording: s3: secret key: %w", err)
		}
		sk = strings.TrimSpace(string(b))
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 30 * time.Second
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("recording: s3: ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("recording: s3: ca_file %s: no PEM certificates", cfg.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	retries := cfg.MaxRetries
	if retries == 0 {
		retries = 3
	}
	opts := &minio.Options{
		Creds:      credentials.NewStaticV4(ak, sk, ""),
		Secure:     u.Scheme == "https",
		Region:     cfg.Region,
		Transport:  tr,
		MaxRetries: retries,
	}
	if cfg.PathStyle {
		opts.BucketLookup = minio.BucketLookupPath
	}
	c, err := minio.New(u.Host, opts)
	if err != nil {
		return nil, fmt.Errorf("recording: s3: %w", err)
	}
	s := &S3Store{c: c, bucket: cfg.Bucket, prefix: cfg.Prefix}
	if cfg.CreateBucket {
		ok, err := c.BucketExists(ctx, cfg.Bucket)
		if err != nil {
			return nil, fmt.Errorf("recording: s3: bucket %s: %w", cfg.Bucket, err)
		}
		if !ok {
			if err := c.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region}); err != nil {
				return nil, fmt.Errorf("recording: s3: create bucket %s: %w", cfg.Bucket, err)
			}
		}
	}
	return s, nil
}

// Put implements BlobStore: the object's key (and locator) is its name.
func (s *S3Store) Put(ctx context.Context, key string, r io.Reader, size int64) (string, error) {
	if err := validKey(key); err != nil {
		return "", err
	}
	// Objects up to the part size go in one request; larger ones in
	// 16 MiB parts, so memory per upload stays bounded.
	_, err := s.c.PutObject(ctx, s.bucket, s.prefix+key, io.LimitReader(r, size), size, minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		PartSize:    16 << 20,
	})
	if err != nil {
		return "", fmt.Errorf("recording: put %s: %w", key, err)
	}
	return key, nil
}

// Get implements BlobStore.
func (s *S3Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := validKey(key); err != nil {
		return nil, err
	}
	obj, err := s.c.GetObject(ctx, s.bucket, s.prefix+key, minio.GetObjectOptions{})
	if err == nil {
		// Stat issues the GET: a missing key is reported here.
		_, err = obj.Stat()
		if err != nil {
			obj.Close()
		}
	}
	if err != nil {
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			return nil, fmt.Errorf("recording: get %s: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("recording: get %s: %w", key, err)
	}
	return obj, nil
}

// Delete implements BlobStore.
func (s *S3Store) Delete(ctx context.Context, key string) error {
	if err := validKey(key); err != nil {
		return err
	}
	if err := s.c.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{}); err != nil {
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			return nil
		}
		return fmt.Errorf("recording: delete %s: %w", key, err)
	}
	return nil
}

// s3ProbeKey is the object Probe writes.
const s3ProbeKey = ".probe"

// Probe writes a small object: it proves the endpoint answers, the
// credentials are valid and the bucket accepts writes.
func (s *S3Store) Probe(ctx context.Context) error {
	b := []byte("probe")
	if _, err := s.c.PutObject(ctx, s.bucket, s.prefix+s3ProbeKey, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{DisableMultipart: true}); err != nil {
		return fmt.Errorf("recording: probe bucket %s: %w", s.bucket, err)
	}
	return nil
}
