import { hashPassword } from './proxy-auth.ts'

// npm run hash-password -- <user> <password>  → a line for PROXY_AUTH_FILE
const [user, password] = process.argv.slice(2)
if (user === undefined || password === undefined || user.includes(':')) {
  console.error('usage: npm run hash-password -- <user> <password>')
  process.exit(2)
}
console.log(hashPassword(user, password))
