package view

import shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"

// Token is the JSON form of an ACL token as `acl token list -o json` prints
// it: never its secret.
type Token struct {
	AccessorID string `json:"accessor_id"`
	Name       string `json:"name"`
	Policy     string `json:"policy"`
	CreatedAt  string `json:"created_at,omitempty"`
	// ExpiresAt is empty for a token that does not expire.
	ExpiresAt string `json:"expires_at,omitempty"`
}

// TokenOf converts a proto token.
func TokenOf(t *shoalv1.Token) Token {
	return Token{
		AccessorID: t.GetAccessorId(), Name: t.GetName(), Policy: TokenPolicyWord(t.GetPolicy()),
		CreatedAt: Time(t.GetCreateTime()), ExpiresAt: Time(t.GetExpireTime()),
	}
}

// TokensOf converts proto tokens; the result is never nil, so JSON prints [].
func TokensOf(ts []*shoalv1.Token) []Token {
	out := make([]Token, 0, len(ts))
	for _, t := range ts {
		out = append(out, TokenOf(t))
	}
	return out
}

// NewToken is a token just made, with its secret, which is shown this once:
// what `acl bootstrap -o json` and `acl token create -o json` print.
type NewToken struct {
	Name       string `json:"name"`
	Policy     string `json:"policy"`
	Secret     string `json:"secret"`
	AccessorID string `json:"accessor_id"`
	CreatedAt  string `json:"created_at,omitempty"`
	ExpiresAt  string `json:"expires_at,omitempty"`
}

// NewTokenOf is the JSON form of a new token and its secret.
func NewTokenOf(t *shoalv1.Token, secret string) NewToken {
	v := TokenOf(t)
	return NewToken{Name: v.Name, Policy: v.Policy, Secret: secret, AccessorID: v.AccessorID, CreatedAt: v.CreatedAt, ExpiresAt: v.ExpiresAt}
}
