package nitro

import (
	"bytes"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Enclave images (EIF) and their measurements, as nitro-cli build-enclave
// and describe-eif compute them (aws-nitro-enclaves-image-format): each PCR
// is SHA-384(48 zero bytes ‖ SHA-384(data)), where the data is
//
//	PCR0: every kernel, cmdline and ramdisk section, in file order
//	PCR1: the kernel and cmdline sections and the first ramdisk (the bootstrap)
//	PCR2: the ramdisks after the first (the application)
//
// PCR8 (the signing certificate) is not computed: Trent does not sign
// images. The format is hand-written here because no Go library reads EIF.

// EIF layout constants.
const (
	eifMagic          = ".eif"
	eifVersion        = 4
	eifMaxSections    = 32
	eifHeaderSize     = 4 + 2 + 2 + 8 + 8 + 2 + 2 + 8*eifMaxSections*2 + 4 + 4 // 548
	eifSectionHdrSize = 2 + 2 + 8
	// MaxImage bounds the image files Trent reads.
	MaxImage = 1 << 30
)

// EIF section types.
const (
	eifKernel    = 1
	eifCmdline   = 2
	eifRamdisk   = 3
	eifSignature = 4
	eifMetadata  = 5
)

// ErrImage reports a malformed EIF file.
var ErrImage = errors.New("nitro: malformed enclave image")

// The simulated kernel, command line and bootstrap ramdisk that BuildEIF
// puts before an application, so that PCR1 is the same for every image
// Trent builds, as it is for every image one nitro-cli release builds.
var (
	simKernel    = []byte("trent simulated Nitro Enclaves kernel, v1\n")
	simCmdline   = []byte("reboot=k panic=30 pci=off nomodules console=ttyS0 random.trust_cpu=on root=/dev/ram0")
	simBootstrap = []byte("trent simulated Nitro Enclaves bootstrap ramdisk, v1\n")
)

// IsEIF reports whether b starts with the EIF magic.
func IsEIF(b []byte) bool { return bytes.HasPrefix(b, []byte(eifMagic)) }

// BuildEIF wraps an application (any file: a binary, a container archive)
// as the second ramdisk of an EIF with Trent's simulated kernel, command
// line and bootstrap ramdisk.
func BuildEIF(app []byte) []byte {
	type section struct {
		typ  uint16
		data []byte
	}
	sections := []section{{eifKernel, simKernel}, {eifCmdline, simCmdline}, {eifRamdisk, simBootstrap}, {eifRamdisk, app}}
	hdr := make([]byte, eifHeaderSize)
	copy(hdr, eifMagic)
	binary.BigEndian.PutUint16(hdr[4:], eifVersion)
	binary.BigEndian.PutUint64(hdr[8:], 512<<20) // default memory
	binary.BigEndian.PutUint64(hdr[16:], 2)      // default CPUs
	binary.BigEndian.PutUint16(hdr[26:], uint16(len(sections)))
	var body []byte
	off := uint64(eifHeaderSize)
	for i, s := range sections {
		binary.BigEndian.PutUint64(hdr[28+8*i:], off)
		binary.BigEndian.PutUint64(hdr[28+8*eifMaxSections+8*i:], uint64(len(s.data)))
		body = binary.BigEndian.AppendUint16(body, s.typ)
		body = binary.BigEndian.AppendUint16(body, 0)
		body = binary.BigEndian.AppendUint64(body, uint64(len(s.data)))
		body = append(body, s.data...)
		off += eifSectionHdrSize + uint64(len(s.data))
	}
	crc := crc32.Update(crc32.ChecksumIEEE(hdr[:eifHeaderSize-4]), crc32.IEEETable, body)
	binary.BigEndian.PutUint32(hdr[eifHeaderSize-4:], crc)
	return append(hdr, body...)
}

// MeasureImage returns PCR0, PCR1 and PCR2 of an image: an EIF file, or
// any other file as BuildEIF would wrap it.
func MeasureImage(image []byte) (map[int][]byte, error) {
	if !IsEIF(image) {
		image = BuildEIF(image)
	}
	return MeasureEIF(image)
}

// MeasureEIF parses an EIF file strictly (header, in-bounds sections that
// tile the file, CRC-32) and returns PCR0, PCR1 and PCR2.
func MeasureEIF(eif []byte) (map[int][]byte, error) {
	if len(eif) < eifHeaderSize || !IsEIF(eif) {
		return nil, fmt.Errorf("%w: no EIF header", ErrImage)
	}
	n := int(binary.BigEndian.Uint16(eif[26:]))
	if n == 0 || n > eifMaxSections {
		return nil, fmt.Errorf("%w: %d sections", ErrImage, n)
	}
	crc := crc32.Update(crc32.ChecksumIEEE(eif[:eifHeaderSize-4]), crc32.IEEETable, eif[eifHeaderSize:])
	if crc != binary.BigEndian.Uint32(eif[eifHeaderSize-4:]) {
		return nil, fmt.Errorf("%w: CRC-32 mismatch", ErrImage)
	}
	image, bootstrap, app := sha512.New384(), sha512.New384(), sha512.New384()
	next, ramdisks := uint64(eifHeaderSize), 0
	for i := 0; i < n; i++ {
		off := binary.BigEndian.Uint64(eif[28+8*i:])
		size := binary.BigEndian.Uint64(eif[28+8*eifMaxSections+8*i:])
		if off != next || size > uint64(len(eif)) || off+eifSectionHdrSize+size > uint64(len(eif)) {
			return nil, fmt.Errorf("%w: section %d out of place", ErrImage, i)
		}
		s := eif[off:]
		typ, hsize := binary.BigEndian.Uint16(s), binary.BigEndian.Uint64(s[4:])
		if hsize != size {
			return nil, fmt.Errorf("%w: section %d size differs from the header's", ErrImage, i)
		}
		data := s[eifSectionHdrSize : eifSectionHdrSize+size]
		switch typ {
		case eifKernel, eifCmdline:
			image.Write(data)
			bootstrap.Write(data)
		case eifRamdisk:
			image.Write(data)
			if ramdisks == 0 {
				bootstrap.Write(data)
			} else {
				app.Write(data)
			}
			ramdisks++
		case eifSignature, eifMetadata:
		default:
			return nil, fmt.Errorf("%w: section %d has type %d", ErrImage, i, typ)
		}
		next = off + eifSectionHdrSize + size
	}
	if next != uint64(len(eif)) {
		return nil, fmt.Errorf("%w: trailing bytes", ErrImage)
	}
	extend := func(d []byte) []byte {
		h := sha512.New384()
		h.Write(make([]byte, sha512.Size384))
		h.Write(d)
		return h.Sum(nil)
	}
	return map[int][]byte{0: extend(image.Sum(nil)), 1: extend(bootstrap.Sum(nil)), 2: extend(app.Sum(nil))}, nil
}

// EnclavePCRs are the 16 PCRs an NSM reports for an enclave booted from
// an image with these measurements: PCR0–2 from the image (all zero in
// debug mode, as the NSM reports them), the rest zero in a simulation.
func EnclavePCRs(image map[int][]byte, debug bool) map[int][]byte {
	pcrs := map[int][]byte{}
	for i := range 16 {
		pcrs[i] = make([]byte, sha512.Size384)
		if v, ok := image[i]; ok && i <= 2 && !debug {
			copy(pcrs[i], v)
		}
	}
	return pcrs
}
