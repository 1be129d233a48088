//! A tiny PNG encoder for the simulated images: one solid colour, any size, built by hand.
//!
//! The file is the PNG signature, then `IHDR` (indexed colour, bit depth 1), `PLTE` (the one
//! colour), one `IDAT` and `IEND`, each chunk with its CRC-32. `IDAT` is a zlib stream of
//! stored (uncompressed) deflate blocks followed by the Adler-32 of the raw scanlines. With one
//! bit per pixel and no compression, a 1024x1024 image is about 130 KB, so the simulator can
//! honour the requested width and height exactly.

/// The eight bytes every PNG file starts with.
pub(crate) const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

/// The most bytes one stored deflate block holds.
const MAX_STORED_BLOCK: usize = 0xffff;

/// A `width` x `height` PNG filled with `rgb`.
pub(crate) fn solid_png(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
    let mut header = Vec::with_capacity(13);
    header.extend(width.to_be_bytes());
    header.extend(height.to_be_bytes());
    // Bit depth 1, colour type 3 (indexed), deflate, adaptive filtering, no interlace.
    header.extend([1, 3, 0, 0, 0]);

    // Each scanline is its filter type (0, none) then one bit per pixel, all palette index 0.
    let row_len = 1 + usize::try_from(width.div_ceil(8)).unwrap_or(usize::MAX);
    let n_rows = usize::try_from(height).unwrap_or(usize::MAX);
    let scanlines = vec![0u8; row_len.saturating_mul(n_rows)];

    let mut png = PNG_SIGNATURE.to_vec();
    push_chunk(&mut png, b"IHDR", &header);
    push_chunk(&mut png, b"PLTE", &rgb);
    push_chunk(&mut png, b"IDAT", &zlib_stored(&scanlines));
    push_chunk(&mut png, b"IEND", &[]);
    png
}

/// Appends one chunk: length, type, data, CRC-32 of type and data.
fn push_chunk(png: &mut Vec<u8>, chunk_type: &[u8; 4], data: &[u8]) {
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    png.extend(len.to_be_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(chunk_type);
    crc.update(data);
    png.extend(chunk_type);
    png.extend(data);
    png.extend(crc.finalize().to_be_bytes());
}

/// A zlib stream holding `data` in stored deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    // CMF 0x78: deflate with a 32 KiB window; FLG 0x01: no dictionary, fastest, and
    // 0x7801 is a multiple of 31 as the header check requires.
    let mut stream = vec![0x78, 0x01];
    let mut blocks = data.chunks(MAX_STORED_BLOCK).peekable();
    if blocks.peek().is_none() {
        // An empty input is still one final, empty block.
        stream.extend([1, 0x00, 0x00, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        let is_final = blocks.peek().is_none();
        // BFINAL in bit 0, BTYPE 00 (stored) in bits 1-2, then padding to the byte.
        stream.push(u8::from(is_final));
        let len = u16::try_from(block.len()).unwrap_or(u16::MAX);
        stream.extend(len.to_le_bytes());
        stream.extend((!len).to_le_bytes());
        stream.extend(block);
    }
    stream.extend(adler32(data).to_be_bytes());
    stream
}

/// The Adler-32 checksum zlib streams end with.
fn adler32(data: &[u8]) -> u32 {
    const MODULUS: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 bytes is the most that can be summed before `b` could overflow a u32.
    for block in data.chunks(5552) {
        for byte in block {
            a += u32::from(*byte);
            b += a;
        }
        a %= MODULUS;
        b %= MODULUS;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits a PNG into its chunks, checking each CRC: `(type, data)`.
    fn chunks(png: &[u8]) -> Vec<(String, Vec<u8>)> {
        assert_eq!(png[..8], PNG_SIGNATURE);
        let mut chunks = Vec::new();
        let mut at = 8;
        while at < png.len() {
            let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
            let chunk_type = &png[at + 4..at + 8];
            let data = &png[at + 8..at + 8 + len];
            let crc = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(chunk_type);
            hasher.update(data);
            assert_eq!(hasher.finalize(), crc);
            chunks.push((String::from_utf8(chunk_type.to_vec()).unwrap(), data.to_vec()));
            at += 12 + len;
        }
        chunks
    }

    /// Inflates a zlib stream made only of stored blocks and checks its Adler-32.
    fn inflate_stored(stream: &[u8]) -> Vec<u8> {
        assert_eq!(u16::from_be_bytes([stream[0], stream[1]]) % 31, 0);
        let mut data = Vec::new();
        let mut at = 2;
        loop {
            let header = stream[at];
            assert_eq!(header & 0b110, 0, "stored blocks only");
            let len = u16::from_le_bytes([stream[at + 1], stream[at + 2]]);
            let nlen = u16::from_le_bytes([stream[at + 3], stream[at + 4]]);
            assert_eq!(len, !nlen);
            data.extend(&stream[at + 5..at + 5 + usize::from(len)]);
            at += 5 + usize::from(len);
            if header & 1 == 1 {
                break;
            }
        }
        assert_eq!(stream[at..], adler32(&data).to_be_bytes());
        data
    }

    #[test]
    fn adler32_known_values() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
        // Long enough to need the modulus several times.
        let long = vec![0xffu8; 100_000];
        let (mut a, mut b) = (1u64, 0u64);
        for byte in &long {
            a = (a + u64::from(*byte)) % 65_521;
            b = (b + a) % 65_521;
        }
        assert_eq!(adler32(&long), ((b << 16) | a) as u32);
    }

    #[test]
    fn a_png_of_the_requested_size_and_colour() {
        for (width, height) in [(1, 1), (64, 64), (1173, 640), (1024, 1024), (13, 3)] {
            let png = solid_png(width, height, [10, 200, 30]);
            let chunks = chunks(&png);
            let types: Vec<&str> = chunks.iter().map(|(kind, _)| kind.as_str()).collect();
            assert_eq!(types, ["IHDR", "PLTE", "IDAT", "IEND"]);
            let header = &chunks[0].1;
            assert_eq!(header[..4], width.to_be_bytes());
            assert_eq!(header[4..8], height.to_be_bytes());
            assert_eq!(header[8..], [1, 3, 0, 0, 0]);
            assert_eq!(chunks[1].1, [10, 200, 30]);
            let scanlines = inflate_stored(&chunks[2].1);
            let row_len = 1 + width.div_ceil(8) as usize;
            assert_eq!(scanlines.len(), row_len * height as usize);
            assert!(scanlines.iter().all(|byte| *byte == 0));
            assert!(chunks[3].1.is_empty());
        }
    }

    #[test]
    fn empty_zlib_stream_is_one_final_block() {
        assert_eq!(inflate_stored(&zlib_stored(&[])), Vec::<u8>::new());
        let exactly_one_block = vec![7u8; MAX_STORED_BLOCK];
        assert_eq!(inflate_stored(&zlib_stored(&exactly_one_block)), exactly_one_block);
    }
}
