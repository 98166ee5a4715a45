package localcloud

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	pathpkg "path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// imdsServer is one instance's IMDSv2 endpoint, bound to the instance's own
// loopback address so a process can only reach "its" metadata by default.
type imdsServer struct {
	srv      *http.Server
	ln       net.Listener
	endpoint string

	mu     sync.Mutex
	tokens map[string]time.Time // token -> expiry (real time: tokens are a client concern)
}

// imdsView is what an instance's metadata shows; fetched per request so
// tags and state stay current.
type imdsView struct {
	InstanceID, ImageID, InstanceType, AZ, IP, Region, AccountID, UserData string
	LaunchTime                                                             time.Time
	Tags                                                                   map[string]string
	// IID and IIDSignature are served as they are: the signature covers
	// exactly these bytes.
	IID          []byte
	IIDSignature string
	// Extra holds the paths that come and go with the instance's
	// lifecycle (spot notices, rebalance recommendations, the target
	// lifecycle state: spot.go), keyed by their cleaned path.
	Extra map[string]string
}

func startIMDS(ip string, view func() (imdsView, bool)) (*imdsServer, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return nil, err
	}
	s := &imdsServer{ln: ln, tokens: map[string]time.Time{}, endpoint: "http://" + ln.Addr().String() + "/"}
	s.srv = &http.Server{Handler: s.handler(view), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *imdsServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

func (s *imdsServer) handler(view func() (imdsView, bool)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/latest/api/token" {
			s.token(w, r)
			return
		}
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if !s.validToken(r.Header.Get("X-aws-ec2-metadata-token")) {
			// IMDSv2 only: a missing or stale token is 401, as with
			// HttpTokens=required.
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		v, ok := view()
		if !ok {
			http.Error(w, "instance is gone", http.StatusNotFound)
			return
		}
		// Clean: the SDK joins paths with a doubled slash ("meta-data//iam/...").
		body, ok := imdsLookup(v, pathpkg.Clean(r.URL.Path))
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(body))
	})
}

func (s *imdsServer) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ttl, err := strconv.Atoi(r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds"))
	if err != nil || ttl < 1 || ttl > 21600 {
		http.Error(w, "X-aws-ec2-metadata-token-ttl-seconds must be 1..21600", http.StatusBadRequest)
		return
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	tok := hex.EncodeToString(b)
	s.mu.Lock()
	now := time.Now()
	for t, exp := range s.tokens {
		if now.After(exp) {
			delete(s.tokens, t)
		}
	}
	s.tokens[tok] = now.Add(time.Duration(ttl) * time.Second)
	s.mu.Unlock()
	w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", strconv.Itoa(ttl))
	_, _ = w.Write([]byte(tok))
}

func (s *imdsServer) validToken(t string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.tokens[t]
	return ok && time.Now().Before(exp)
}

func imdsLookup(v imdsView, path string) (string, bool) {
	if body, ok := v.Extra[path]; ok {
		return body, true
	}
	md := map[string]string{
		"ami-id":                      v.ImageID,
		"instance-id":                 v.InstanceID,
		"instance-type":               v.InstanceType,
		"local-ipv4":                  v.IP,
		"local-hostname":              hostname(v.IP),
		"hostname":                    hostname(v.IP),
		"placement/availability-zone": v.AZ,
		"placement/region":            v.Region,
	}
	switch {
	case path == "/latest/meta-data":
		keys := []string{"ami-id", "hostname", "iam/", "instance-id", "instance-type", "local-hostname", "local-ipv4", "placement/", "tags/"}
		return strings.Join(keys, "\n"), true
	case path == "/latest/meta-data/placement":
		return "availability-zone\nregion", true
	case path == "/latest/meta-data/tags":
		return "instance", true
	case path == "/latest/meta-data/tags/instance":
		keys := make([]string, 0, len(v.Tags))
		for k := range v.Tags {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return strings.Join(keys, "\n"), true
	case strings.HasPrefix(path, "/latest/meta-data/tags/instance/"):
		val, ok := v.Tags[strings.TrimPrefix(path, "/latest/meta-data/tags/instance/")]
		return val, ok
	case path == "/latest/meta-data/iam":
		return "info\nsecurity-credentials/", true
	case path == "/latest/meta-data/iam/info":
		b, _ := json.Marshal(map[string]string{"Code": "Success", "LastUpdated": time.Now().UTC().Format(time.RFC3339),
			"InstanceProfileArn": "arn:aws:iam::" + v.AccountID + ":instance-profile/" + InstanceRole, "InstanceProfileId": "AIPALOCALCLOUD"})
		return string(b), true
	case path == "/latest/meta-data/iam/security-credentials":
		return InstanceRole, true
	case path == "/latest/meta-data/iam/security-credentials/"+InstanceRole:
		return roleCredentials(), true
	case strings.HasPrefix(path, "/latest/meta-data/"):
		val, ok := md[strings.TrimPrefix(path, "/latest/meta-data/")]
		return val, ok
	case path == "/latest/user-data":
		if v.UserData == "" {
			return "", false
		}
		return v.UserData, true
	case path == "/latest/dynamic/instance-identity/document":
		return string(v.IID), v.IID != nil
	case path == "/latest/dynamic/instance-identity/signature":
		return v.IIDSignature, v.IIDSignature != ""
	case path == "/latest/dynamic/instance-identity":
		// No pkcs7 (DSA/SHA-1) and no rsa2048: only what Shoal verifies.
		return "document\nsignature", true
	case path == "/latest/dynamic":
		return "instance-identity/", true
	}
	return "", false
}

func hostname(ip string) string {
	return "ip-" + strings.ReplaceAll(ip, ".", "-") + ".ec2.internal"
}

// InstanceRole is the instance profile role every instance has, so the
// SDK's default credential chain inside an instance finds credentials in
// IMDS exactly as on EC2.
const InstanceRole = "shoal-localcloud-instance"

// roleCredentials returns fresh role credentials. They are random: the
// local cloud accepts any signature. Expiration is wall-clock time because
// the SDK compares it with its own clock.
func roleCredentials() string {
	now := time.Now().UTC()
	b, _ := json.Marshal(map[string]string{
		"Code": "Success", "Type": "AWS-HMAC", "LastUpdated": now.Format(time.RFC3339),
		"AccessKeyId": "ASIA" + strings.ToUpper(randHex(16)), "SecretAccessKey": randHex(40), "Token": randHex(64),
		"Expiration": now.Add(6 * time.Hour).Format(time.RFC3339),
	})
	return string(b)
}
