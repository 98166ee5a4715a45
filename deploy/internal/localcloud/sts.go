package localcloud

import (
	"encoding/xml"
	"net/http"
	"strings"
)

// stsVersion is the Version form field STS clients send (awsQuery).
const stsVersion = "2011-06-15"

const stsXMLNS = "https://sts.amazonaws.com/doc/2011-06-15/"

// Callers the local cloud names in GetCallerIdentity: whoever holds the
// instance role's credentials (access keys from IMDS start with ASIA, as
// temporary credentials do on AWS), and everyone else as one IAM user. The
// local cloud accepts any key, so it cannot tell users apart; what matters
// to Shoal is the account.
const (
	localUserName       = "localcloud"
	localUserID         = "AIDALOCALCLOUDUSER0001"
	localRoleID         = "AROALOCALCLOUDINSTANCE1"
	localRoleSessionTag = "localcloud-instance"
)

type callerIdentity struct {
	Arn     string `xml:"Arn"`
	UserID  string `xml:"UserId"`
	Account string `xml:"Account"`
}

// serveSTS answers the one STS action Shoal calls: GetCallerIdentity, which
// the coordinator uses to learn its own account (the default of
// --iid-accounts).
func (s *Server) serveSTS(w http.ResponseWriter, r *http.Request, action string) {
	if action != "GetCallerIdentity" {
		writeSTSError(w, apiErr(http.StatusBadRequest, "InvalidAction", "Could not find operation %s for version %s: the local cloud serves STS GetCallerIdentity only", action, stsVersion))
		return
	}
	writeSTSResponse(w, action, s.callerIdentity(accessKeyID(r)))
}

func (s *Server) callerIdentity(accessKey string) callerIdentity {
	acct := s.cloud.cfg.AccountID
	if strings.HasPrefix(accessKey, "ASIA") {
		return callerIdentity{
			Arn:     "arn:aws:sts::" + acct + ":assumed-role/" + InstanceRole + "/" + localRoleSessionTag,
			UserID:  localRoleID + ":" + localRoleSessionTag,
			Account: acct,
		}
	}
	return callerIdentity{Arn: "arn:aws:iam::" + acct + ":user/" + localUserName, UserID: localUserID, Account: acct}
}

// accessKeyID is the key id of a well-formed SigV4 Authorization header.
func accessKeyID(r *http.Request) string {
	if m := sigv4Header.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		return m[1]
	}
	return ""
}

func writeSTSResponse(w http.ResponseWriter, action string, result any) {
	start := xml.StartElement{Name: xml.Name{Local: action + "Response"}, Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: stsXMLNS}}}
	writeXML(w, http.StatusOK, start, action+"Result", result, "ResponseMetadata", responseMetadata{requestID()})
}

func writeSTSError(w http.ResponseWriter, e *APIError) {
	type errBody struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	typ := "Sender"
	if e.Status >= 500 {
		typ = "Receiver"
	}
	start := xml.StartElement{Name: xml.Name{Local: "ErrorResponse"}, Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: stsXMLNS}}}
	writeXML(w, e.Status, start, "Error", errBody{typ, e.Code, e.Message}, "RequestId", requestID())
}
