// The QR code the wizard shows: an inline SVG made on the server, so the secret never leaves
// it in a URL or through a third-party image service.
import QRCode from 'qrcode'

export async function qrSvg (otpauthUri: string): Promise<string> {
  return await QRCode.toString(otpauthUri, { type: 'svg', errorCorrectionLevel: 'M', margin: 4 })
}
