package policy

import "encoding/json"

// Default returns KMS's default key policy for an account (the document
// CreateKey uses when Policy is omitted): Version 2012-10-17, Id
// "key-default-1", one statement "Enable IAM User Permissions" allowing
// kms:* on "*" to the account's root principal, which in Trent is every
// principal of the account (see the package documentation). It is laid out
// as KMS's GetKeyPolicy returns it: newlines, two-space indent, " : "
// between name and value, and no final newline. account should be a
// 12-digit account ID; Parse refuses the result otherwise.
func Default(account string) []byte {
	root, _ := json.Marshal("arn:aws:iam::" + account + ":root") // a string always marshals
	b := make([]byte, 0, 320)
	b = append(b, "{\n"+
		"  \"Version\" : \"2012-10-17\",\n"+
		"  \"Id\" : \"key-default-1\",\n"+
		"  \"Statement\" : [ {\n"+
		"    \"Sid\" : \"Enable IAM User Permissions\",\n"+
		"    \"Effect\" : \"Allow\",\n"+
		"    \"Principal\" : {\n"+
		"      \"AWS\" : "...)
	b = append(b, root...)
	b = append(b, "\n"+
		"    },\n"+
		"    \"Action\" : \"kms:*\",\n"+
		"    \"Resource\" : \"*\"\n"+
		"  } ]\n"+
		"}"...)
	return b
}
