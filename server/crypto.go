package server

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// KeyEnv names the environment variable that holds the server key, which
// seals secrets (destination URLs, configurations, states) at rest.
const KeyEnv = "SLUICE_SERVER_KEY"

// KeyFile is the key file created in the data folder when KeyEnv is unset.
const KeyFile = "server.key"

// sealer encrypts secrets with AES-256-GCM. Each value gets a random nonce;
// the purpose ("destination url", ...) is authenticated with it, so a
// sealed value copied into another column does not open.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("the server key must be 32 bytes, not %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(purpose string, plain []byte) string {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		// crypto/rand does not fail on supported platforms.
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(purpose)))
}

var errKeyMismatch = errors.New("a sealed value does not open with this server key")

func (s *sealer) open(purpose, sealed string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(b) < s.aead.NonceSize() {
		return nil, errKeyMismatch
	}
	plain, err := s.aead.Open(nil, b[:s.aead.NonceSize()], b[s.aead.NonceSize():], []byte(purpose))
	if err != nil {
		return nil, errKeyMismatch
	}
	return plain, nil
}

// loadKey returns the server key: KeyEnv if set (base64 or hex of 32
// bytes), else the key file in dataDir, created (mode 0600) on first start.
func loadKey(dataDir string) ([]byte, error) {
	if v := strings.TrimSpace(os.Getenv(KeyEnv)); v != "" {
		key, err := decodeKey(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", KeyEnv, err)
		}
		return key, nil
	}
	path := filepath.Join(dataDir, KeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKeyFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("server key file: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("server key file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("server key file %s can be read by other users (mode %04o): run `chmod 600 %s`", path, st.Mode().Perm(), path)
	}
	key, err := decodeKey(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("server key file %s: %w", path, err)
	}
	return key, nil
}

func decodeKey(v string) ([]byte, error) {
	for _, dec := range []func(string) ([]byte, error){
		base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString, hex.DecodeString,
	} {
		if b, err := dec(v); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, errors.New("not a 32-byte key in base64 or hex: make one with `openssl rand -base64 32`")
}

func createKeyFile(path string) ([]byte, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("server key file: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	// O_EXCL: two processes starting at once must not each write a key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return loadKey(filepath.Dir(path))
	}
	if err != nil {
		return nil, fmt.Errorf("create server key file: %w", err)
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("create server key file: %w", err)
	}
	return key, nil
}

// checkKey makes sure the key opens what the store sealed: a store first
// opened with one key and then with another would otherwise fail later, on
// the first secret it reads.
func checkKey(ctx context.Context, st *store, s *sealer) error {
	const purpose, plain = "key check", "sluice"
	v, err := st.setMetaOnce(ctx, "key_check", s.seal(purpose, []byte(plain)))
	if err != nil {
		return fmt.Errorf("key check: %w", err)
	}
	if got, err := s.open(purpose, v); err != nil || string(got) != plain {
		return fmt.Errorf("the server key is not the one this metadata store was created with: set %s (or the data folder's %s) to that key; every process sharing a store needs the same key", KeyEnv, KeyFile)
	}
	return nil
}

// APIKey is an API key's record; the key itself is shown once, at creation.
type APIKey struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// apiKeyPrefix starts every key, so a key is recognisable in a leak scan.
const apiKeyPrefix = "sluice_"

// createAPIKey makes a key "sluice_<id>_<secret>": the id finds the record,
// the 256-bit secret is kept only as its SHA-256.
func (st *store) createAPIKey(ctx context.Context, name string) (APIKey, string, error) {
	idb := make([]byte, 6)
	secret := make([]byte, 32)
	if _, err := rand.Read(idb); err != nil {
		return APIKey{}, "", err
	}
	if _, err := rand.Read(secret); err != nil {
		return APIKey{}, "", err
	}
	id := hex.EncodeToString(idb)
	sec := base64.RawURLEncoding.EncodeToString(secret)
	sum := sha256.Sum256([]byte(sec))
	now := time.Now()
	if _, err := st.exec(ctx, `INSERT INTO sluice_api_keys (id, name, hash, created_at) VALUES (?, ?, ?, ?)`,
		id, name, hex.EncodeToString(sum[:]), formatTime(now)); err != nil {
		return APIKey{}, "", fmt.Errorf("store API key: %w", err)
	}
	return APIKey{ID: id, Name: name, CreatedAt: now.UTC()}, apiKeyPrefix + id + "_" + sec, nil
}

// dummyHash is compared against when a key's id is unknown, so an unknown
// id costs the same as a wrong secret.
var dummyHash = sha256.Sum256([]byte("no such key"))

// verifyAPIKey reports whether key is a valid, unrevoked key.
func (st *store) verifyAPIKey(ctx context.Context, key string) (bool, error) {
	id, sec, ok := strings.Cut(strings.TrimPrefix(key, apiKeyPrefix), "_")
	if !strings.HasPrefix(key, apiKeyPrefix) || !ok || len(id) != 12 {
		id, sec = "", key
	}
	var hash string
	var revoked sql.NullString
	err := st.queryRow(ctx, `SELECT hash, revoked_at FROM sluice_api_keys WHERE id = ?`, id).Scan(&hash, &revoked)
	want := dummyHash[:]
	if err == nil {
		if h, derr := hex.DecodeString(hash); derr == nil {
			want = h
		}
	} else if !errors.Is(err, sql.ErrNoRows) {
		return false, err
	}
	got := sha256.Sum256([]byte(sec))
	match := subtle.ConstantTimeCompare(got[:], want) == 1
	if err != nil || !match || revoked.Valid {
		return false, nil
	}
	// Last use is a hint for `keys list`; one write a minute is plenty.
	now := time.Now()
	st.exec(ctx, `UPDATE sluice_api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`,
		formatTime(now), id, formatTime(now.Add(-time.Minute)))
	return true, nil
}

func (st *store) listAPIKeys(ctx context.Context) ([]APIKey, error) {
	rows, err := st.db.QueryContext(ctx, `SELECT id, name, created_at, revoked_at, last_used_at FROM sluice_api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []APIKey
	for rows.Next() {
		var k APIKey
		var created string
		var revoked, used sql.NullString
		if err := rows.Scan(&k.ID, &k.Name, &created, &revoked, &used); err != nil {
			return nil, err
		}
		k.CreatedAt = parseTime(created)
		k.RevokedAt = nullTime(revoked)
		k.LastUsedAt = nullTime(used)
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// revokeAPIKey revokes a key by id (or by the whole key, or its
// "sluice_<id>" start, as a user may paste either).
func (st *store) revokeAPIKey(ctx context.Context, id string) error {
	if strings.HasPrefix(id, apiKeyPrefix) {
		id, _, _ = strings.Cut(strings.TrimPrefix(id, apiKeyPrefix), "_")
	}
	res, err := st.exec(ctx, `UPDATE sluice_api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, formatTime(time.Now()), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var x string
		if err := st.queryRow(ctx, `SELECT id FROM sluice_api_keys WHERE id = ?`, id).Scan(&x); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("no API key with id %q: `sluice serve keys list` shows the ids", id)
		}
		return nil // already revoked
	}
	return nil
}
